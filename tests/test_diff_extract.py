"""`recipe diff A B` names exactly the resolved keys that differ, for recipe
files, run folders and git revisions; `recipe extract IMAGE` gives back the
resolved recipe a run stored in its PNG, which compiles to the same bytes."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from compiler.cli.main import main
from compiler.diff import Change, diff_documents

ROOT = Path(__file__).resolve().parents[1]
SD15 = ROOT / "recipes" / "sd15-duo.yaml"


def diff(capsys, a, b):
    code = main(["diff", str(a), str(b)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def variant(tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / name
    shutil.copy(SD15, tmp_path / "sd15-duo.yaml")   # a recipe extends only files beside it
    path.write_text(f"extends: sd15-duo.yaml\nname: sd15-duo\n{extra}", encoding="utf-8")
    return path


def test_names_exactly_the_keys_that_differ(tmp_path, capsys):
    b = variant(tmp_path, "b.yaml", "sampler: {seed: 7}\ncharacters:\n  a: {strength: {model: 0.8}}\n"
                                    "hires: {scale: 1.5}\n")
    code, lines, err = diff(capsys, SD15, b)
    assert code == 0
    assert lines == ["~ characters.a.strength.model: 0.7 → 0.8",
                     "~ sampler.seed: 5 → 7",
                     "~ hires: null → {denoise: 0.5, scale: 1.5, steps: 4, upscale_method: nearest-exact}"]
    assert "3 differences" in err


def test_removed_keys_and_rendered_prompts(tmp_path, capsys):
    a = variant(tmp_path, "a.yaml", "vars: {x: red}\ncharacters:\n  b: {prompt: 'a woman in {{ vars.x }}'}\n")
    b = variant(tmp_path, "b.yaml", "vars: {x: blue}\ncharacters:\n  b: {prompt: 'a woman in {{ vars.x }}'}\n"
                                    "negative: null\n")
    code, lines, _ = diff(capsys, a, b)
    assert code == 0
    assert lines == ['~ vars.x: "red" → "blue"',
                     '~ characters.b.prompt: "celestesh-01, a woman in red" → "celestesh-01, a woman in blue"',
                     '~ negative: "blurry" → "blurry, lowres, bad anatomy"']


def test_equal_recipes_say_so(tmp_path, capsys):
    same = variant(tmp_path, "same.yaml", "sampler: {seed: 5}\n")   # written differently, resolves alike
    code, lines, _ = diff(capsys, SD15, same)
    assert (code, lines) == (0, ["no differences"])


def test_a_run_folder_is_its_resolved_recipe(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["compile", str(SD15), "--set", "sampler.steps=9", "--resolved", str(run / "recipe.resolved.yaml"),
                 "-o", str(tmp_path / "g.json")]) == 0
    capsys.readouterr()
    code, lines, _ = diff(capsys, run, SD15)
    assert code == 0 and lines == ["~ sampler.steps: 9 → 4"]
    code, lines, err = diff(capsys, tmp_path, SD15)
    assert code == 2 and "not a run folder" in err


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository with a recipe that extends a preset, committed once."""
    root = tmp_path / "repo"
    (root / "recipes" / "presets").mkdir(parents=True)
    (root / "recipes" / "duo.yaml").write_text(SD15.read_text().replace("version: 1\n", "version: 1\nextends: [fast]\n"))
    (root / "recipes" / "presets" / "fast.yaml").write_text("hires: {denoise: 0.3}\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.chdir(root)
    return root


def test_git_revision_with_its_presets_as_they_were(repo, capsys):
    (repo / "recipes" / "presets" / "fast.yaml").write_text("hires: {denoise: 0.25}\n")
    recipe = repo / "recipes" / "duo.yaml"
    recipe.write_text(recipe.read_text().replace("seed: 5", "seed: 6"))
    code, lines, _ = diff(capsys, "git:HEAD:recipes/duo.yaml", "recipes/duo.yaml")
    assert code == 0 and lines == ["~ sampler.seed: 5 → 6", "~ hires.denoise: 0.3 → 0.25"]
    code, lines, _ = diff(capsys, "git:HEAD:recipes/duo.yaml", "git:HEAD:recipes/duo.yaml")
    assert lines == ["no differences"]


def test_git_path_relative_to_here(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo / "recipes")
    code, lines, _ = diff(capsys, "git:HEAD:./duo.yaml", "duo.yaml")
    assert (code, lines) == (0, ["no differences"])


@pytest.mark.parametrize("spec,words", [
    ("git:nosuchrev:recipes/duo.yaml", "git show nosuchrev:recipes/duo.yaml failed: fatal: invalid object name"),
    ("git:HEAD:recipes/none.yaml", "failed: fatal: path 'recipes/none.yaml' does not exist in 'HEAD'"),
                                        ("git:HEAD", "expected git:REV:path"),
    ("git:--output=x.txt:recipes/duo.yaml", "`--output=x.txt` is not a revision")])
def test_git_errors_are_plain(repo, capsys, spec, words):
    code, _, err = diff(capsys, spec, "recipes/duo.yaml")
    assert code == 2 and words in err and "Traceback" not in err
    assert not (repo / "x.txt").exists()


def test_changes_by_index_and_whole():
    assert diff_documents({"l": [1, 2]}, {"l": [1, 3]}) == [Change("changed", "l[1]", 2, 3)]
    assert diff_documents({"l": [1, 2]}, {"l": [1]}) == [Change("changed", "l", [1, 2], [1])]
    assert diff_documents({"x": 1}, {"x": 1.0}) == []
    assert diff_documents({"x": True}, {"x": 1}) == [Change("changed", "x", True, 1)]
    gone_and_new = diff_documents({"c": {"a": {"lora": "x"}}}, {"c": {"b": {"lora": "y"}}})
    assert [c.format() for c in gone_and_new] == ['- c.a: {lora: x}', '+ c.b: {lora: y}']


# -- recipe extract ------------------------------------------------------------------------

def test_extract_round_trips_to_the_same_graph(comfy_server, capsys, tmp_path):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6")
    assert main(["run", str(SD15), "--server", srv.url, "--out", str(tmp_path / "out"), "--plain"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    (png,) = folder.glob("*.png")
    assert main(["extract", str(png)]) == 0
    text = capsys.readouterr().out
    assert text == (folder / "recipe.resolved.yaml").read_text()
    extracted = tmp_path / "extracted.yaml"
    extracted.write_text(text)
    assert main(["compile", str(extracted), "-o", str(tmp_path / "again.api.json")]) == 0
    assert (tmp_path / "again.api.json").read_bytes() == (folder / "graph.api.json").read_bytes()
    assert main(["extract", str(png), "-o", str(tmp_path / "x.yaml")]) == 0
    assert (tmp_path / "x.yaml").read_text() == text


def test_extract_errors(tmp_path, capsys):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    (tmp_path / "text.png").write_text("not a png")
    cases = [("missing.png", "file not found"), ("plain.png", "no `recipe` metadata in this image"),
             ("text.png", "not an image Pillow can read")]
    for name, words in cases:
        assert main(["extract", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
