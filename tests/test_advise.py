"""The advisor, one rule at a time, and how `recipe check` / `compile` / `run` treat its findings.

A rule's case is a folder `tests/advise/<code>/`:

    fail.yaml   a recipe the rule must flag, at the recipe key in EXPECTED, with file:line
    pass.yaml   the same recipe, fixed: the rule must say nothing (and nothing else may either)
    fail.args   optional extra CLI arguments for fail.yaml, one per line (`--set`, `sampler.steps=12`)

Adding a rule to compiler/advise.py RULES means adding its folder and its line in EXPECTED;
`test_every_rule_has_a_case` fails until both exist.
"""
from __future__ import annotations

import json

from pathlib import Path

import pytest

from compiler.check.advise import RULES, advise
from compiler.cli.main import build_parser, main
from compiler.errors import LowerError
from compiler.ir.graph import Graph
from compiler.lower import lower
from compiler.resolve.passes import resolve_file

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "advise"

# rule code -> (level, the recipe key the finding must name)
EXPECTED = {
    "gguf-hooks": ("error", "model.unet"),
    "lora-twice": ("error", "characters.celeste.lora"),
    "sampler": ("error", "sampler.name"),
    "scheduler": ("error", "sampler.scheduler"),
    "canvas": ("error", "canvas.width"),
    "region-feather": ("error", "characters.roxy.region"),
    "coverage": ("error", "characters"),
    "schnell-guidance": ("warning", "guidance"),
    "steps": ("warning", "sampler.steps"),
    "negative-cfg1": ("warning", "negative"),
    "flux-cfg": ("warning", "sampler.cfg"),
    "zero-strength": ("warning", "characters.roxy.strength"),
    "trigger": ("warning", "characters.roxy.prompt"),
    "overlap": ("warning", "characters.celeste.region"),
    "feather": ("warning", "characters.roxy.region"),
    "t5-cpu": ("warning", "model.text_encoder_device"),
    "area-separation": ("warning", "regions.area"),
    "refine-hires": ("warning", "hires.denoise"),
}


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("RECIPE_DEBUG", raising=False)


def case_path(code: str, kind: str) -> str:
    return f"tests/advise/{code}/{kind}.yaml"


def extra_args(code: str, kind: str) -> list:
    args = CASES / code / f"{kind}.args"
    return [line for line in args.read_text("utf-8").splitlines() if line] if args.exists() else []


def resolved(code: str, kind: str):
    """The case's recipe, with its .args read by the real CLI parser."""
    args = build_parser().parse_args(["check", case_path(code, kind), *extra_args(code, kind)])
    return resolve_file(args.file, args.overrides, args.presets)


def findings(code: str, kind: str):
    recipe = resolved(code, kind)
    return advise(recipe, lower(recipe))


def test_every_rule_has_a_case():
    folders = {p.name for p in CASES.iterdir() if p.is_dir()}
    assert folders == set(EXPECTED), "tests/advise/ folders and EXPECTED disagree"
    for code in folders:
        assert {p.name for p in (CASES / code).iterdir()} <= {"fail.yaml", "pass.yaml", "fail.args"}, code
        assert (CASES / code / "fail.yaml").is_file() and (CASES / code / "pass.yaml").is_file(), code
    # Each function in RULES fires on at least one fail case, so no rule goes untested.
    # (gguf-hooks is refused by lower(); its rule reads only the recipe, so it gets an empty graph.)
    cases = [(resolved(code, "fail"), _graph_or_none(code)) for code in EXPECTED]
    for rule in RULES:
        fired = {f.code for recipe, graph in cases for f in rule(recipe, graph)}
        assert fired & set(EXPECTED), f"{rule.__name__} fires on no case in tests/advise/"


def _graph_or_none(code: str) -> Graph:
    try:
        return lower(resolved(code, "fail"))
    except LowerError:
        return Graph({})


@pytest.mark.parametrize("code", sorted(set(EXPECTED) - {"gguf-hooks"}))
def test_rule(code):
    level, key = EXPECTED[code]
    found = [f for f in findings(code, "fail") if f.code == code]
    assert found, f"{case_path(code, 'fail')} should produce a `{code}` finding"
    f = next((f for f in found if f.location.key_path == key), None)
    assert f is not None, f"`{code}` is at {[str(x.location) for x in found]}, expected key {key}"
    assert f.level == level
    assert f.message and f.hint, "a finding says why and what to do"
    if extra_args(code, "fail"):     # the value came from the command line
        assert f.location.file == "--set"
    else:
        assert Path(f.location.file) == Path(case_path(code, "fail")) and f.location.line > 0
    assert f.format().startswith(f"{level}: {f.location.file}")
    assert findings(code, "pass") == [], f"{case_path(code, 'pass')} should pass every rule"


def test_gguf_hooks_rule_reads_the_recipe_alone():
    """lower() refuses a GGUF+hooks recipe, so the rule is checked on the recipe itself."""
    rule = next(r for r in RULES if r.__name__ == "gguf_with_hooks")
    (f,) = list(rule(resolved("gguf-hooks", "fail"), Graph({})))
    assert (f.code, f.level, f.location.key_path) == ("gguf-hooks", "error", "model.unet")
    # refine first: it keeps per-character LoRAs (global would bleed them into each other)
    assert f.hint.startswith("set lora_mode: refine") and "use a .safetensors UNet" in f.hint
    assert "lora_mode: global" not in f.hint
    assert f.location.line > 0
    assert list(rule(resolved("gguf-hooks", "pass"), Graph({}))) == []
    recipe = resolved("gguf-hooks", "pass")
    assert advise(recipe, lower(recipe)) == []


def test_same_lora_in_two_hook_groups_is_a_warning_not_an_error(tmp_path):
    """In hooks mode each region gets the LoRA once: no doubling, only a wasted pass."""
    recipe = resolve_file(case_path("lora-twice", "fail"), ["lora_mode=hooks"])
    (f,) = [f for f in advise(recipe, lower(recipe)) if f.code == "lora-twice"]
    assert f.level == "warning" and f.location.key_path == "characters.celeste.lora"
    assert "roxy and celeste" in f.message and "lora_mode: global" in f.hint


def test_dev_at_few_steps_is_unfinished():
    recipe = resolve_file(case_path("steps", "pass"), ["model.variant=dev", "sampler.steps=6"])
    (f,) = [f for f in advise(recipe, lower(recipe)) if f.code == "steps"]
    assert "unfinished" in f.message and f.location.key_path == "sampler.steps"


# -- the CLI: exit codes and where findings go --------------------------------------------

def test_check_prints_warnings_and_exits_0(capsys):
    assert main(["check", case_path("trigger", "fail")]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert ("warning: tests/advise/trigger/fail.yaml:13:5 characters.roxy.prompt: trigger `roxygirl04` "
            "is not first in the prompt") in err
    assert "passes the advisor's checks" in err


def test_check_exits_2_on_an_error(capsys):
    assert main(["check", case_path("coverage", "fail")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "error: tests/advise/coverage/fail.yaml:10:1 characters: the regions leave part of the canvas" in err
    assert "add a scene: prompt" in err


def test_strict_turns_a_warning_into_exit_2(capsys):
    assert main(["check", case_path("negative-cfg1", "fail"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "negative: the negative prompt is never evaluated at cfg 1" in err
    assert "passes the advisor" not in err
    assert main(["check", case_path("negative-cfg1", "pass"), "--strict"]) == 0


def test_a_value_from_the_command_line_is_located_at_set(capsys):
    assert main(["check", case_path("steps", "fail"), *extra_args("steps", "fail")]) == 0
    assert "warning: --set sampler.steps: schnell is distilled for 1-4 steps" in capsys.readouterr().err
    assert main(["check", case_path("steps", "fail"), *extra_args("steps", "fail"), "--strict"]) == 2
    assert "error: --set sampler.steps: schnell is distilled for 1-4 steps" in capsys.readouterr().err


GGUF_MESSAGE = "use a .safetensors UNet"


def test_compile_refuses_gguf_with_hooks(capsys, tmp_path):
    target = tmp_path / "graph.json"
    assert main(["compile", case_path("gguf-hooks", "fail"), "-o", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and not target.exists()
    assert "tests/advise/gguf-hooks/fail.yaml:6:3 model.unet: a GGUF model cannot be used with hook LoRAs" in err
    assert GGUF_MESSAGE in err and "set lora_mode: refine" in err
    assert main(["compile", case_path("gguf-hooks", "pass"), "-o", str(target)]) == 0
    assert "UnetLoaderGGUF" in target.read_text()
    # what the hint says works: per-character LoRAs on the GGUF UNet through LoraLoader
    assert main(["compile", case_path("gguf-hooks", "fail"), "--set", "lora_mode=refine", "-o", str(target)]) == 0
    graph = json.loads(target.read_text())
    assert {n["class_type"] for n in graph.values()} >= {"UnetLoaderGGUF", "LoraLoader", "LatentCompositeMasked"}
    assert not any(n["class_type"] == "CreateHookLora" for n in graph.values())


def test_run_refuses_gguf_with_hooks_before_anything_is_sent(comfy_server, capsys, tmp_path):
    srv = comfy_server("08-execution-error-gguf-with-hooks")
    code = main(["run", case_path("gguf-hooks", "fail"), "--server", srv.url, "--out", str(tmp_path / "out"),
                 "--plain"])
    out, err = capsys.readouterr()
    assert code == 2 and GGUF_MESSAGE in err and "model.unet" in err
    assert not [r for r in srv.requests if r.method == "POST" and r.path == "/prompt"]
    assert srv.requests == []             # not even a catalogue fetch: refused before connecting
    assert not (tmp_path / "out").exists()
