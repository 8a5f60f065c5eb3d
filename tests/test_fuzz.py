"""Fuzzing the CLI with mutated example recipes (part of the normal suite, so CI runs it).

Each example in recipes/ is mutated as an artist pasting things, or an
attacker, would: keys deleted, values swapped for other types, NaN and
infinity, unicode with control characters, the text truncated or spliced.
Whatever comes out, `recipe compile`, `recipe check` and `recipe resolve`
(one drawn per example) exit 0 or 2, never with a traceback or an internal error; a refusal is one `error:` line per problem, each
naming the file (or the --set it came from); and a graph carries no NaN.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler.cli.main import main

try:
    from .mutations import mutate
except ImportError:   # tests/ is not a package
    from mutations import mutate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "recipes").glob("*.yaml"))
TEXTS = [p.read_text("utf-8") for p in EXAMPLES]
DOCS = [yaml.safe_load(t) for t in TEXTS]

# Characters people paste: terminal escapes, NUL, bidi overrides, U+FFFE, emoji.
BIG = "big-int-here"   # replaced by 5000 digits after dumping (PyYAML cannot write one)
NASTY = st.sampled_from(["\x1b[2J", "\x00", "\u202e", "\ufffe", "\x07", "\n", "\r", "\t", "{{", "{%", "}}",
                         "%", "../", "/etc/passwd", "é", "🦊", "\\", "'", '"', ": ", "- ", "&a", "*a", "!!"])
UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.sampled_from([float("nan"), float("inf"), -float("inf"), 512.0, 1.0, BIG]),
                    UNICODE, st.lists(st.integers(0, 3), max_size=3), st.just({}))


@st.composite
def mutated_docs(draw):
    """An example recipe with a few of its values deleted or replaced."""
    doc = draw(st.sampled_from(DOCS))
    doc = mutate(draw, doc, draw(st.integers(1, 4)), st.one_of(SCALARS, NASTY),
                 delete=lambda draw, parent: draw(st.booleans()) and isinstance(parent, dict))
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).replace(BIG, "9" * 5000)


@st.composite
def mutated_texts(draw):
    """An example's text truncated, or with nasty characters spliced in."""
    text = draw(st.sampled_from(TEXTS))
    if draw(st.booleans()):
        return text[:draw(st.integers(0, len(text)))]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.one_of(NASTY, UNICODE)) + text[at:]
    return text


def _no_nan(text: str) -> None:
    def refuse(name):
        raise AssertionError(f"the graph carries {name}")
    json.loads(text, parse_constant=refuse)


def _compile(folder: Path, text: str, command: str = "compile") -> tuple:
    path = folder / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([command, str(path)])
    return code, out.getvalue(), err.getvalue(), str(path)


COMMANDS = st.sampled_from(["compile", "check", "resolve"])


def _succeeded(command: str, out: str, lines: list) -> None:
    """What each command prints when it accepts the recipe."""
    if command == "compile":
        _no_nan(out)
    elif command == "check":
        assert out == "" and lines and lines[-1].startswith("ok: ") and lines[-1].endswith("passes the advisor's checks")
        lines = lines[:-1]
    else:   # resolve: the resolved recipe, YAML that reads back as a mapping with no NaN
        resolved = yaml.safe_load(out)
        assert isinstance(resolved, dict) and resolved.get("version") == 1
        _no_nan(json.dumps(resolved))
    assert all(line.startswith("warning: ") for line in lines), lines


def _check(folder: Path, text: str, command: str = "compile") -> None:
    code, out, err, path = _compile(folder, text, command)
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    if code == 0:
        _succeeded(command, out, lines)
        return
    assert out == ""
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors and all(line.startswith(("error: ", "warning: ")) for line in lines), err
    assert all(line.startswith((f"error: {path}", "error: --set", "error: --preset")) or "presets/" in line
               for line in errors), err
    assert not any(c in err for c in "\x1b\x00\x07\u202e\ufffe"), "control characters must be shown escaped"


FOLDER = Path(tempfile.mkdtemp(prefix="recipe-fuzz-"))
shutil.copytree(ROOT / "recipes" / "presets", FOLDER / "presets")
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(mutated_docs(), COMMANDS)
def test_mutated_documents_exit_0_or_2_with_one_line_per_error(text, command):
    _check(FOLDER, text, command)


@FUZZ
@given(mutated_texts(), COMMANDS)
def test_mutated_texts_exit_0_or_2_with_one_line_per_error(text, command):
    _check(FOLDER, text, command)


def test_the_examples_themselves_compile():
    for text in TEXTS:
        code, out, err, _ = _compile(FOLDER, text)
        assert code == 0, err
        _no_nan(out)
        assert not math.isnan(len(out))
