"""compiler.pipeline: the one driver from a recipe file (or a loaded one) to
a checked graph, used by the CLI, the watch, each sweep job and compile_file."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler import pipeline
from compiler.errors import AdviceError, SchemaError
from compiler.lower import lower
from compiler.resolve.passes import resolve_file

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = str(ROOT / "recipes" / "portrait.yaml")


def write(folder: Path, text: str, name: str = "r.yaml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_compile_is_resolve_then_lower_then_the_advisor():
    done = pipeline.compile(PORTRAIT, ["sampler.seed=7"], ["speed"])
    by_hand = resolve_file(PORTRAIT, ["sampler.seed=7"], ["speed"])
    assert done.recipe == by_hand and done.graph.to_json() == lower(by_hand).to_json()
    assert all(f.level == "warning" for f in done.findings)


def test_warnings_are_returned_and_refused_when_strict():
    done = pipeline.compile(PORTRAIT, ["sampler.steps=4"])
    assert "steps" in [f.code for f in done.findings]
    with pytest.raises(AdviceError) as err:
        pipeline.compile(PORTRAIT, ["sampler.steps=4"], strict=True)
    assert "at 4 steps is usually unfinished" in str(err.value)


def test_advisor_errors_are_raised_once():
    with pytest.raises(AdviceError) as err:
        pipeline.compile(PORTRAIT, ["canvas.width=900", "sampler.name=euler_a"])
    assert [e.location.key_path for e in err.value.errors] == ["canvas.width", "sampler.name"]


def test_a_loaded_recipe_compiles_again_and_again_from_copies():
    loaded = pipeline.load(PORTRAIT, ["speed"])
    before = repr(loaded.document), loaded.source.paths()
    a = pipeline.compile(loaded, ["canvas.width=512", "characters.roxy.lora=null"])
    b = pipeline.compile(loaded)
    assert (repr(loaded.document), loaded.source.paths()) == before
    assert b.graph.to_json() == pipeline.compile(PORTRAIT, presets=["speed"]).graph.to_json()
    assert a.recipe.canvas.width == 512 and b.recipe.canvas.width == 768   # the speed preset's
    with pytest.raises(ValueError):
        pipeline.compile(loaded, presets=["speed"])


def test_a_document_and_source_map_compile_like_the_file(tmp_path):
    from compiler.resolve.presets import load_with_presets
    path = write(tmp_path, f"extends: {ROOT / 'recipes' / 'sd15-duo.yaml'}\nname: duo\n")
    from compiler.resolve.access import Roots
    doc, source = load_with_presets(path, roots=Roots.of(path, [ROOT / "recipes"]))
    assert pipeline.compile((doc, source)).graph.to_json() == \
        pipeline.compile(path, allow=[ROOT / "recipes"]).graph.to_json()
    with pytest.raises(SchemaError) as err:
        pipeline.compile((doc, source), ["sampler.steps=0"])
    assert str(err.value) == "--set sampler.steps: must be ≥ 1, not 0"


def test_compile_file_refuses_what_the_cli_refuses(capsys):
    from compiler import compile_file
    from compiler.cli.main import main
    recipe, graph = compile_file(PORTRAIT, ["sampler.steps=4"])   # a warning: returned, not printed
    assert recipe.sampler.steps == 4 and "sampler" in graph
    with pytest.raises(AdviceError) as err:
        compile_file(PORTRAIT, ["canvas.width=900"])
    assert main(["compile", PORTRAIT, "--set", "canvas.width=900"]) == 2
    assert str(err.value) in capsys.readouterr().err
    with pytest.raises(AdviceError):
        compile_file(PORTRAIT, ["sampler.steps=4"], strict=True)
