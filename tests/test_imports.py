"""What each command imports, read from `python -X importtime`: a command loads
what it uses and nothing more (issue 12). Each third-party module counts for
the package that pulled it in (jsonschema's own dependencies are jsonschema's),
so the lists below are the packages our code imports itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What `recipe compile` of a valid recipe may load: the YAML reader. jsonschema is
# built only to word what is wrong with an invalid one (resolve/conforms.py answers
# for the rest), and jinja2 only for a template that does more than put values in
# (resolve/substitute.py renders portrait.yaml's `{{ trigger }}` and `{{ vars.light }}`).
COMPILE_MAY_LOAD = frozenset({"yaml"})
# Never for compile: the network, images, progress bars, arrays.
NEVER_FOR_COMPILE = frozenset({"requests", "urllib3", "websocket", "PIL", "tqdm", "numpy", "aiohttp"})


def imported_by_us(argv, cwd=ROOT, env=None) -> set:
    """The third-party packages a `python -m compiler ARGV` process imports
    itself, each dependency of theirs counted as theirs."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "compiler", *argv], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return owners(done.stderr)


def owners(importtime: str) -> set:
    """Parse importtime's tree (children are printed before their parent,
    indented two spaces a level) and name the third-party package that each
    third-party import belongs to: itself, or the third-party package above it."""
    rows = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2 and "self [us]" not in line:
            name = line.rsplit("|", 1)[1]
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip()))
    found, stack = set(), []   # stack: (level, owner) of the ancestors, outermost first
    for level, name in reversed(rows):   # parents now come before their children
        while stack and stack[-1][0] >= level:
            stack.pop()
        above = stack[-1][1] if stack else None
        top = name.split(".")[0]
        if above is not None:            # inside a third-party package, or the standard library's doing
            owner = above
        elif top in sys.stdlib_module_names or top.startswith("_"):
            owner = "<stdlib>"
        elif top in ("compiler", "encodings", "sitecustomize") or top.startswith("__editable__"):
            owner = None
        else:
            owner = top
        stack.append((level, owner))
        found.add(owner)
    return found - {None, "<stdlib>"}


def test_the_parser_counts_dependencies_for_their_package():
    text = "\n".join(f"import time: 1 | 2 | {name}" for name in
                     ["      rpds", "    referencing", "  jsonschema", "    yaml.reader", "  yaml",
                      "      org", "    org.python", "  copy", "compiler", "  attrs", "site"])
    assert owners(text) == {"jsonschema", "yaml"}   # attrs is site's, org copy's


def test_recipe_compile_loads_only_what_it_uses():
    used = imported_by_us(["compile", "recipes/portrait.yaml", "-o", os.devnull], env={"RECIPE_NO_CACHE": "1"})
    assert used <= COMPILE_MAY_LOAD, sorted(used - COMPILE_MAY_LOAD)
    assert not used & NEVER_FOR_COMPILE


def test_only_an_invalid_recipe_loads_jsonschema(tmp_path):
    text = (ROOT / "recipes/sd15-duo.yaml").read_text("utf-8")
    (tmp_path / "bad.yaml").write_text(text.replace("steps:", "stepz:", 1), "utf-8")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "compiler", "compile",
                           str(tmp_path / "bad.yaml"), "-o", os.devnull], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "RECIPE_NO_CACHE": "1"}, timeout=60)
    assert done.returncode == 2 and "did you mean `steps`" in done.stderr
    assert "jsonschema" in owners(done.stderr)


def test_a_template_with_a_filter_loads_jinja2(tmp_path):
    text = (ROOT / "recipes/sd15-duo.yaml").read_text("utf-8").replace("{{ trigger }}", "{{ trigger | lower }}", 1)
    assert "{{ trigger | lower }}" in text
    (tmp_path / "filtered.yaml").write_text(text, "utf-8")
    used = imported_by_us(["compile", str(tmp_path / "filtered.yaml"), "-o", os.devnull], cwd=tmp_path,
                          env={"RECIPE_NO_CACHE": "1"})
    assert "jinja2" in used


def test_prompts_without_templates_do_not_load_jinja2(tmp_path):
    text = (ROOT / "recipes/sd15-duo.yaml").read_text("utf-8").replace("{{ trigger }}, ", "")
    (tmp_path / "plain.yaml").write_text(text, "utf-8")
    used = imported_by_us(["compile", str(tmp_path / "plain.yaml"), "-o", os.devnull], cwd=tmp_path,
                          env={"RECIPE_NO_CACHE": "1"})
    assert "jinja2" not in used and used <= COMPILE_MAY_LOAD


@pytest.mark.parametrize("argv", [["--version"], ["compile", "--help"]])
def test_the_command_line_itself_loads_nothing_heavy(argv):
    assert not imported_by_us(argv) & (NEVER_FOR_COMPILE | {"jsonschema", "jinja2"})


# What a resubmitted `recipe run` may load: the floor, websocket-client (HTTP is the standard
# library's: requests and urllib3 cost ~50 ms), and nothing that compiling needs when the
# compile is cached: not even PyYAML, as the cache keeps the resolved recipe's text.
RUN_MAY_LOAD = frozenset({"websocket"})


def test_a_cached_recipe_run_loads_only_the_floor(comfy_server, tmp_path):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    argv = ["run", str(ROOT / "recipes/sd15-duo.yaml"), "--server", srv.url, "--out", str(tmp_path / "out"),
            "--plain"]
    first = imported_by_us(argv, cwd=tmp_path)
    assert first <= RUN_MAY_LOAD | COMPILE_MAY_LOAD and not first & {"PIL", "tqdm", "numpy"}
    again = imported_by_us(argv, cwd=tmp_path)   # the compile cache and the kept catalogue entries
    assert again <= RUN_MAY_LOAD, sorted(again - RUN_MAY_LOAD)
