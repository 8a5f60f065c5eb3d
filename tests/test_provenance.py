"""Git provenance in run.json: the commit, the dirty state of the recipe and
of each preset it used, the recipe's path in the repository; and nothing at
all (but no failure) outside git, without git, or when git hangs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler import pipeline
from compiler.ab.report import render_report
from compiler.cli.main import main
from compiler.run import provenance
from compiler.run.provenance import git_provenance, recipe_files

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A work tree with recipes/duo.yaml (extends sd15-duo's settings) and a preset, committed."""
    root = tmp_path / "art"
    (root / "recipes" / "presets").mkdir(parents=True)
    shutil.copy(ROOT / "recipes" / "sd15-duo.yaml", root / "recipes" / "duo.yaml")
    (root / "recipes" / "presets" / "fast.yaml").write_text("sampler: {steps: 2}\n", encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root


def files_of(path: Path, presets=("fast",)):
    return recipe_files(pipeline.resolve(str(path), (), presets))


@needs_git
def test_a_clean_work_tree_names_the_commit_and_the_path(repo):
    got = git_provenance(files_of(repo / "recipes" / "duo.yaml"))
    assert got == {"commit": git(repo, "rev-parse", "HEAD").strip(), "path": "recipes/duo.yaml", "dirty": False,
                   "files": [{"path": "recipes/duo.yaml", "state": "clean"},
                             {"path": "recipes/presets/fast.yaml", "state": "clean"}]}


@needs_git
def test_a_changed_preset_and_an_untracked_recipe_are_dirty(repo):
    (repo / "recipes" / "presets" / "fast.yaml").write_text("sampler: {steps: 3}\n", encoding="utf-8")
    shutil.copy(repo / "recipes" / "duo.yaml", repo / "recipes" / "new *.yaml")   # a glob character, too
    got = git_provenance(files_of(repo / "recipes" / "new *.yaml"))
    assert got["dirty"] is True and got["path"] == "recipes/new *.yaml"
    assert got["files"] == [{"path": "recipes/new *.yaml", "state": "untracked"},
                            {"path": "recipes/presets/fast.yaml", "state": "modified"}]


@needs_git
def test_a_repository_without_commits_has_no_commit_and_is_dirty(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "r.yaml").write_text("x: 1\n", encoding="utf-8")
    assert git_provenance([str(tmp_path / "r.yaml")]) == {
        "commit": None, "path": "r.yaml", "dirty": True, "files": [{"path": "r.yaml", "state": "untracked"}]}


def test_outside_git_without_git_and_with_a_hanging_git_there_is_none(tmp_path, monkeypatch):
    (tmp_path / "r.yaml").write_text("x: 1\n", encoding="utf-8")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_provenance([str(tmp_path / "r.yaml")]) is None          # not a work tree
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))                           # no git at all
    assert git_provenance([str(ROOT / "recipes" / "sd15-duo.yaml")]) is None
    hang = bin_dir / "git"
    hang.write_text("#!/bin/sh\nexec sleep 30\n", encoding="utf-8")
    hang.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/bin{os.pathsep}/usr/bin")
    monkeypatch.setattr(provenance, "TIMEOUT_S", 0.2)
    assert git_provenance([str(ROOT / "recipes" / "sd15-duo.yaml")]) is None


def run(tmp_path, srv, recipe: Path, *extra) -> dict:
    code = main(["run", str(recipe), "--server", srv.url, "--out", str(tmp_path / "out"), "--plain", *extra])
    assert code == 0
    (folder,) = (tmp_path / "out").glob("*/*/run.json")
    return {**json.loads(folder.read_text()), "_folder": str(folder.parent)}


@needs_git
def test_run_json_records_the_commit_and_the_dirty_state(comfy_server, repo, tmp_path, capsys, monkeypatch):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.005)
    (repo / "recipes" / "presets" / "fast.yaml").write_text("sampler: {steps: 3}\n", encoding="utf-8")
    rec = run(tmp_path, srv, repo / "recipes" / "duo.yaml", "--preset", "fast")
    assert rec["status"] == "success"
    assert rec["git"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert rec["git"]["path"] == "recipes/duo.yaml" and rec["git"]["dirty"] is True
    assert {"path": "recipes/presets/fast.yaml", "state": "modified"} in rec["git"]["files"]
    monkeypatch.chdir(repo)          # and back from the picture to the commit: what the run changed
    capsys.readouterr()
    assert main(["diff", f"git:{rec['git']['commit']}:{rec['git']['path']}", rec["_folder"]]) == 0
    assert capsys.readouterr().out.splitlines() == ["~ sampler.steps: 4 → 3"]


def test_a_run_outside_git_and_without_git_still_succeeds(comfy_server, tmp_path, monkeypatch):
    srv = comfy_server("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.005)
    recipe = tmp_path / "duo.yaml"
    shutil.copy(ROOT / "recipes" / "sd15-duo.yaml", recipe)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    rec = run(tmp_path, srv, recipe)
    assert rec["status"] == "success" and rec["git"] is None


def test_the_report_shows_each_jobs_commit(tmp_path):
    for name, state in (("01-a", "clean"), ("02-b", "modified")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"seed": 1, "git": {
            "commit": "0123456789abcdef0123456789abcdef01234567", "path": "recipes/duo.yaml",
            "dirty": state != "clean", "files": [{"path": "recipes/duo.yaml", "state": state}]}}))
    jobs = [{"index": i, "label": n, "folder": n, "status": "success", "images": []}
            for i, n in enumerate(("01-a", "02-b"))]
    page = render_report(tmp_path, {"recipe": "duo", "jobs": jobs})
    first, second = page.split('id="job-1"')[1], page.split('id="job-2"')[1]
    assert "commit 0123456789" in first.split("</section>")[0]
    assert "uncommitted" not in first.split("</section>")[0]
    assert "commit 0123456789 + uncommitted changes to recipes/duo.yaml" in second.split("</section>")[0]
