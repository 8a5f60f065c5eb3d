"""Git provenance for run.json: which commit a picture was made from, and
whether the recipe or a preset it used differed from that commit.

`git` runs as a subprocess, in the recipe's folder, with a short timeout
and no user text in option position (paths come after `--`). Outside a
work tree, without git installed, or when git is slow or fails, there is
simply no provenance: a run never fails for want of it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from compiler.ir.recipe import Recipe

__all__ = ["git_provenance", "recipe_files"]

TIMEOUT_S = 5.0
# Porcelain status codes that mean "not as in the commit" for one file.
_STATES = {"??": "untracked", "!!": "ignored"}


def recipe_files(recipe: Recipe) -> List[str]:
    """The recipe file first, then every other file a key of it came from
    (its presets), as absolute paths. A preset whose every key was
    overridden shaped nothing, so it is not listed."""
    names = [recipe.source] + sorted({loc.file for loc in recipe.locations.values()} - {recipe.source})
    files: List[str] = []
    for name in names:
        path = os.path.abspath(name)
        if os.path.isfile(path) and path not in files:
            files.append(path)
    return files


def _run_git(cwd: str, *args: str) -> Optional[subprocess.CompletedProcess]:
    # Never take the index lock (a user may be committing), and read paths as
    # paths: a `*` in a file name is not a glob.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C"}
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                              env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, ValueError):   # no git, a timeout, a vanished folder
        return None


def _git(cwd: str, *args: str) -> Optional[str]:
    done = _run_git(cwd, *args)
    return done.stdout if done is not None and done.returncode == 0 else None


def _top_and_commit(folder: str) -> Tuple[Optional[str], Optional[str]]:
    """The work tree's top folder and HEAD's commit, in one git call (each
    costs a process start in every run): outside a work tree (None, None); in
    a repository without a commit yet, (top, None), as git then prints the
    top and fails on HEAD alone."""
    done = _run_git(folder, "rev-parse", "--show-toplevel", "--verify", "--quiet", "HEAD^{commit}")
    lines = done.stdout.splitlines() if done is not None and done.returncode in (0, 1) else []
    if not lines or not lines[0].strip():
        return None, None
    commit = lines[1].strip() if done.returncode == 0 and len(lines) > 1 else ""
    return lines[0].strip(), commit or None


def git_provenance(files: Sequence[str]) -> Optional[dict]:
    """{"commit", "path", "dirty", "files": [{"path", "state"}]} for the work
    tree holding files[0] (the recipe), or None outside one. `state` is
    clean, modified, untracked or ignored; a file outside that work tree is
    listed with its absolute path and state "outside"."""
    if not files:
        return None
    top, commit = _top_and_commit(str(Path(files[0]).parent))
    if top is None:
        return None
    root = os.path.realpath(top)
    inside = {f: _relative(f, root) for f in files}
    states = _states(root, [r for r in inside.values() if r is not None], commit)
    listed = [{"path": rel, "state": states.get(rel, "clean")} if rel is not None else
              {"path": f, "state": "outside"} for f, rel in inside.items()]
    return {"commit": commit, "path": inside[files[0]], "dirty": any(f["state"] != "clean" for f in listed),
            "files": listed}


def _relative(path: str, root: str) -> Optional[str]:
    real = os.path.realpath(path)
    try:
        rel = os.path.relpath(real, root)
    except ValueError:   # another drive on Windows
        return None
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else Path(rel).as_posix()


def _states(root: str, paths: Iterable[str], commit: Optional[str]) -> dict:
    """path -> state for the paths that are not clean. Without a commit yet
    (a fresh repository), every file differs from it."""
    paths = list(paths)
    if commit is None:
        return {p: "untracked" for p in paths}
    if not paths:
        return {}
    out = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching",
               "--no-renames", "--", *paths)
    if out is None:
        return {p: "unknown" for p in paths}
    states = {}
    for entry in out.split("\0"):
        if len(entry) > 3:
            states[entry[3:]] = _STATES.get(entry[:2], "modified")
    return states
