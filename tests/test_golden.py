"""Golden graphs: every example recipe compiles to exactly the bytes in tests/golden/.

A case is a file `tests/golden/<stem>[+<preset>...].api.json`: `portrait+speed.api.json`
is `recipe compile recipes/portrait.yaml --preset speed`. Every `recipes/*.yaml` must
have a plain `<stem>.api.json`.

To regenerate (after a change to the lowering you have reviewed), run with the
explicit flag

    RECIPE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

which rewrites every golden file (and creates missing ones for new recipes), then
read the diff in `git diff tests/golden` before committing it. To pin a new preset
combination, create an empty `tests/golden/<stem>+<preset>.api.json` and regenerate.

Each golden case is also checked twice more:
- against the node catalogue ../shared/comfyui/object_info.json with
  `compiler.catalogue.check_graph`, after `--set` points the model files at ones that
  catalogue has (the example recipes name the real files of a production server);
- the resolved recipe (`compiler.emit.resolved_yaml`), written out and compiled
  again, gives the byte-identical graph.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from compiler import compile_file
from compiler.cli.main import main
from compiler.check.catalogue import check_graph
from compiler.comfy.object_info import Catalogue
from compiler.resolve.written import resolved_yaml
from compiler.ir.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
RECIPES = ROOT / "recipes"
OBJECT_INFO = Path(__file__).resolve().parents[2] / "shared" / "comfyui" / "object_info.json"
UPDATE = os.environ.get("RECIPE_UPDATE_GOLDEN") == "1"
SUFFIX = ".api.json"

# Files the test catalogue has (object_info.json), per family.
TINY_FLUX = {"dev": "tiny-flux-dev-fp8_e4m3fn.safetensors", "srpo": "tiny-flux-dev-fp8_e4m3fn.safetensors",
             "schnell": "tiny-flux-schnell-fp8_e4m3fn.safetensors"}
TINY_TEXT_ENCODERS = "[tiny-t5xxl_fp8_e4m3fn.safetensors, tiny-clip_l.safetensors]"
TINY_FLUX_VAE = "tiny-flux-ae.safetensors"
TINY_FLUX_LORAS = ("tiny-char-a.safetensors", "tiny-char-b.safetensors")
TINY_CHECKPOINT = "tiny-sd15.safetensors"
TINY_SD_LORAS = ("tiny-sd15-char-a.safetensors", "tiny-sd15-char-b.safetensors")


def _case_names() -> list:
    names = {p.name[:-len(SUFFIX)] for p in GOLDEN.glob("*" + SUFFIX)}
    names |= {p.stem for p in RECIPES.glob("*.yaml")}
    return sorted(names)


def _split(case: str):
    stem, *presets = case.split("+")
    return f"recipes/{stem}.yaml", presets


def _diff(expected: str, actual: str, name: str, context: int = 40) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                      f"tests/golden/{name}", "compiled", lineterm="", n=2))
    more = f"\n... {len(lines) - context} more diff lines" if len(lines) > context else ""
    return "\n".join(lines[:context]) + more


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_every_recipe_has_a_golden_file():
    if UPDATE:
        pytest.skip("RECIPE_UPDATE_GOLDEN=1: golden files are being written")
    missing = [p.name for p in RECIPES.glob("*.yaml") if not (GOLDEN / f"{p.stem}{SUFFIX}").exists()]
    assert not missing, f"no golden graph for {missing}; run RECIPE_UPDATE_GOLDEN=1 pytest {__file__}"


def _command(path: str, presets: list) -> list:
    return ["compile", path, *[arg for p in presets for arg in ("--preset", p)]]


@pytest.mark.parametrize("case", _case_names())
def test_golden(case, capsys):
    """`recipe compile` (the real CLI, advisor included) prints exactly the golden bytes."""
    path, presets = _split(case)
    command = _command(path, presets)
    code = main(command)
    actual, err = capsys.readouterr()
    assert code == 0, f"recipe {' '.join(command)} failed:\n{err}"
    golden = GOLDEN / f"{case}{SUFFIX}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert golden.exists(), f"{golden} is missing; regenerate with RECIPE_UPDATE_GOLDEN=1"
    expected = golden.read_text("utf-8")
    assert actual == expected, (
        f"recipe {' '.join(command)} differs from "
        f"tests/golden/{case}{SUFFIX} (first differing lines below; if the change is intended, "
        f"regenerate with RECIPE_UPDATE_GOLDEN=1):\n" + _diff(expected, actual, golden.name))


@pytest.mark.parametrize("case", _case_names())
def test_resolved_yaml_recompiles_identically(case, tmp_path):
    """`recipe compile --resolved` output compiles back to the same graph."""
    path, presets = _split(case)
    recipe, graph = compile_file(path, presets=presets)
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(resolved_yaml(recipe), encoding="utf-8")
    _, again = compile_file(str(resolved))
    assert again.to_json() == graph.to_json(), _diff(graph.to_json(), again.to_json(), "resolved")


def tiny_overrides(recipe: Recipe) -> list:
    """--set items that point every model file of `recipe` at one the test catalogue has."""
    m = recipe.model
    if m.family == "flux":
        sets = [f"model.unet={TINY_FLUX[m.variant]}", f"model.text_encoders={TINY_TEXT_ENCODERS}",
                f"model.vae={TINY_FLUX_VAE}"]
        loras = TINY_FLUX_LORAS
    else:
        sets = [f"model.checkpoint={TINY_CHECKPOINT}"]
        loras = TINY_SD_LORAS
    sets += [f"characters.{c.id}.lora={loras[i % len(loras)]}"
             for i, c in enumerate(recipe.characters) if c.lora]
    return sets


@pytest.fixture(scope="module")
def catalogue():
    if not OBJECT_INFO.exists():
        pytest.skip(f"node catalogue {OBJECT_INFO} is absent (it comes from the shared ComfyUI recordings)")
    return Catalogue.from_file(str(OBJECT_INFO))


@pytest.mark.parametrize("case", _case_names())
def test_golden_graph_fits_the_catalogue(case, catalogue):
    path, presets = _split(case)
    recipe, _ = compile_file(path, presets=presets)
    recipe, graph = compile_file(path, overrides=tiny_overrides(recipe), presets=presets)
    check_graph(graph, catalogue, recipe.locate)   # raises CatalogueError listing every problem
