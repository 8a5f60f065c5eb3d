"""`recipe diff A B`: what differs between two resolved recipes, key by key.

Both sides are resolved first (presets merged, defaults filled, prompts
rendered), so the diff shows what the server would see differently, not how
the files happen to be written. A side is a recipe file, a run folder (its
recipe.resolved.yaml), or `git:REV:path`, read with `git show` and resolved
in a temporary copy of its folder at that revision, presets included.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Tuple

import yaml

from compiler.errors import Location, RecipeError
from compiler.source import Path as KeyPath, key_path

__all__ = ["Change", "diff_documents", "load_side", "format_value"]

_MAX_GIT_FILES = 2000    # yaml files copied out of a revision: a recipe folder, not a monorepo


@dataclass(frozen=True)
class Change:
    kind: str      # added | removed | changed
    path: str      # characters.roxy.strength.model
    old: Any = None
    new: Any = None

    def format(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {format_value(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {format_value(self.old)}"
        return f"~ {self.path}: {format_value(self.old)} → {format_value(self.new)}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": self.path, "old": self.old, "new": self.new}


def format_value(value: Any) -> str:
    """One line of YAML flow style: what a user would type after --set."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)   # quoted: spaces and commas stay readable
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=True).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def diff_documents(a: Any, b: Any, path: KeyPath = ()) -> List[Change]:
    """Mappings by key, equal-length lists by index, anything else whole."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: List[Change] = []
        for key in [*a, *(k for k in b if k not in a)]:
            sub = path + (key,)
            if key not in b:
                out.append(Change("removed", key_path(sub), old=a[key]))
            elif key not in a:
                out.append(Change("added", key_path(sub), new=b[key]))
            else:
                out.extend(diff_documents(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [c for i, (x, y) in enumerate(zip(a, b)) for c in diff_documents(x, y, path + (i,))]
    if a == b and (type(a) is type(b) or (_number(a) and _number(b))):   # 1 and 1.0 mean the same
        return []
    return [Change("changed", key_path(path) or "(the whole recipe)", old=a, new=b)]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the sides ------------------------------------------------------------------------------

def load_side(spec: str) -> Tuple[str, dict]:
    """(what to call it, its resolved document)."""
    if spec.startswith("git:"):
        return spec, _git_side(spec)
    path = Path(spec)
    if path.is_dir():
        resolved = path / "recipe.resolved.yaml"
        if not resolved.is_file():
            raise RecipeError("not a run folder (no recipe.resolved.yaml) and not a recipe file",
                              Location(spec))
        return spec, _resolved(str(resolved), spec)
    return spec, _resolved(spec, spec)


def _resolved(path: str, display: str) -> dict:
    from compiler.resolve.passes import resolve_file
    from compiler.resolve.schema import load_schema
    doc = copy.deepcopy(dict(resolve_file(path, display=display).document))
    doc["version"] = 1    # every resolved recipe says so (emit.resolved_yaml); a source may not
    order = list(load_schema()["properties"])   # as recipe.resolved.yaml reads, top-down
    return {k: doc[k] for k in sorted(doc, key=lambda k: order.index(k) if k in order else len(order))}


def _git(args: List[str], cwd: str, what: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RecipeError(f"cannot run git: {exc}", Location(what)) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RecipeError(f"git {' '.join(args[:2])} failed: {why[-1] if why else 'no reason given'}",
                          Location(what))
    return done.stdout


def _git_side(spec: str) -> dict:
    """git:REV:path -> resolved in a temp dir that mirrors the repository's layout,
    so `extends:` finds the presets as they were at REV."""
    _, rev, rel = (spec.split(":", 2) + ["", ""])[:3]
    if not rev or not rel:
        raise RecipeError("expected git:REV:path, e.g. git:HEAD~1:recipes/portrait.yaml", Location(spec))
    if rev.startswith("-"):   # git would read it as an option (--output=FILE writes a file)
        raise RecipeError(f"`{rev}` is not a revision: a revision cannot start with -", Location(spec))
    prefix = _git(["rev-parse", "--show-prefix"], os.getcwd(), spec).decode().strip()
    top = _git(["rev-parse", "--show-toplevel"], os.getcwd(), spec).decode().strip()
    # git reads REV:path from the top of the repository, REV:./path from here.
    rel = os.path.normpath(prefix + rel) if rel.startswith(("./", "../")) else os.path.normpath(rel)
    if rel.startswith(".."):
        raise RecipeError("the path leaves the repository", Location(spec))
    with tempfile.TemporaryDirectory(prefix="recipe-diff-") as tmp:
        _materialise(rev, rel, tmp, top, spec)      # first: its error is the one to show
        for name in _yaml_files_near(rev, rel, top, spec):
            _materialise(rev, name, tmp, top, spec)
        return _resolved(os.path.join(tmp, rel), spec)


def _yaml_files_near(rev: str, rel: str, top: str, spec: str) -> List[str]:
    """The YAML files `extends:` may name: beside the recipe, below it, and in
    ../presets (find_preset's places)."""
    here = os.path.dirname(rel)
    places = [here or "."] + ([os.path.join(os.path.dirname(here), "presets")] if here else [])
    listing = _git(["ls-tree", "-r", "--name-only", rev, "--", *places], top, spec)
    names = [n for n in listing.decode("utf-8", "replace").splitlines() if n.endswith((".yaml", ".yml"))]
    return names[:_MAX_GIT_FILES]


def _materialise(rev: str, rel: str, tmp: str, top: str, spec: str) -> None:
    target = Path(tmp, rel)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_git(["show", f"{rev}:{rel}"], top, spec))
