"""Stage 2, presets: `extends:` merged under the recipe, in order, and
--preset over it; after the loader, before the resolve passes.

Rules: a later preset wins over an earlier one and the recipe wins over all;
mappings merge key by key, anything else is replaced whole; `null` removes an
inherited value (so the family default applies again). Each key keeps the
location of the file that supplied it, so an error in a preset points into
the preset.

Only files a recipe may read are loaded (resolve/access.py): a name that
leads outside is refused at the `extends:` line (or the --preset) that named
it, before anything is read. Each file is loaded and merged once, by real
path, however many presets extend it, and chains are capped in depth and in
files, so a fan-out of presets extending each other twice cannot load 2^25.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, Callable, Dict, List, Sequence, Tuple

from compiler.errors import Location, PresetError, RecipeError
from compiler.resolve.access import Roots
from compiler.resolve.schema import suggest
from compiler.source import Path, SourceMap

__all__ = ["Loaded", "load_recipe", "load_with_presets", "deep_merge", "find_preset", "available_presets"]

Reader = Callable[[FsPath, str], Tuple[Any, SourceMap]]   # (path, display name) -> load_file's answer

MAX_DEPTH = 16    # presets extending presets
MAX_FILES = 64    # distinct preset files behind one recipe


@dataclass(frozen=True)
class Loaded:
    """A recipe after stages 1-2, load and presets: what every compile of it
    starts from. Nothing changes it; take `copy()` to resolve one."""
    file: str                  # the recipe's display name
    document: dict             # extends: and the presets merged in, nulls dropped
    source: SourceMap
    presets: Tuple[str, ...]   # the --preset names merged over it
    written: Any               # the recipe file itself as written (a variant's `null` survives here)
    roots: Roots | None = None  # the folders it may read files from (None: its own, Roots.of(file))
    files: Tuple[str, ...] = ()   # every file read: the recipe, each preset (what a compile cache hashes)

    def copy(self) -> Tuple[dict, SourceMap]:
        """A deep copy of the document and its source map, for passes that change them."""
        return copy.deepcopy(self.document), copy.deepcopy(self.source)


def _load_file(path: FsPath, display: str) -> Tuple[Any, SourceMap]:
    """loader.load_file, imported (with PyYAML) when a file is read: a cached
    compile reads none, and pipeline imports this module."""
    from compiler.resolve.loader import load_file
    return load_file(path, display)


class _ReadOnce:
    """A reader that reads and parses each file once and hands out deep copies."""

    def __init__(self):
        self.seen: Dict[Tuple[str, str], Tuple[Any, SourceMap]] = {}

    def __call__(self, path: FsPath, display: str) -> Tuple[Any, SourceMap]:
        key = (os.path.realpath(path), display)
        if key not in self.seen:
            self.seen[key] = _load_file(path, display)
        return copy.deepcopy(self.seen[key])


def load_recipe(path: str, presets: Sequence[str] = (), display: str | None = None,
                allow: Sequence[str] = ()) -> Loaded:
    """Load and presets, reading each file (the recipe, each preset) once.
    `allow`: folders it may read from besides its own (--allow-path)."""
    display = display or str(path)
    read = _ReadOnce()
    roots = Roots.of(path, allow)
    doc, source = load_with_presets(path, display, on_top=presets, read=read, roots=roots)
    written, _ = read(FsPath(path), display)
    return Loaded(display, doc, source, tuple(presets), written, roots,
                  tuple(dict.fromkeys(k[0] for k in read.seen)))


def load_with_presets(path: str, display: str | None = None, on_top: Sequence[str] = (),
                      read: Reader = _load_file, roots: Roots | None = None) -> Tuple[dict, SourceMap]:
    """The recipe with its `extends:` merged under it and `on_top` presets
    (the CLI's --preset) merged over it: a preset asked for on the command
    line is meant to change this run, so it wins over the file. `read` loads
    one file; its answer is changed in place. `roots`: what it may read."""
    chain = _Chain(read, roots or Roots.of(path))
    doc, source = chain.load(FsPath(path), display or str(path), ())
    for name in on_top:
        ppath = chain.find(name, FsPath(path).parent, Location("--preset", 0, 0, name))
        pdata, psource = chain.load(ppath, _display_path(ppath), ())
        doc = deep_merge(doc, pdata, source, psource)
    return _drop_nulls(doc), source


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


class _Chain:
    """One recipe's presets: each file loaded and merged once (by real path),
    only from `roots`, within MAX_DEPTH and MAX_FILES."""

    def __init__(self, read: Reader, roots: Roots):
        self.read, self.roots = read, roots
        self.done: Dict[str, Tuple[dict, SourceMap]] = {}

    def find(self, name: str, base: FsPath, where: Location) -> FsPath:
        # A path is confined before it is looked at, so the answer does not tell
        # whether a file outside exists; the found file again, for symlinks.
        if _is_path(name) and not self.roots.admits(str(base / name)):
            raise PresetError(self.roots.refusal(name), where)
        path = find_preset(name, base, where)
        if not self.roots.admits(str(path)):
            raise PresetError(self.roots.refusal(name), where)
        return path

    def load(self, path: FsPath, display: str, stack: tuple) -> Tuple[dict, SourceMap]:
        key = os.path.realpath(path)
        if key not in self.done:
            self.done[key] = self._load(path, display, stack)
        return copy.deepcopy(self.done[key])

    def _load(self, path: FsPath, display: str, stack: tuple) -> Tuple[dict, SourceMap]:
        data, source = self.read(path, display)
        if not isinstance(data, dict):
            root = source.locate(())
            raise RecipeError("a recipe must be a mapping of keys (model:, characters:, ...)",
                              Location(display, root.line or 1, root.col or 1))
        raw = data.pop("extends", None)
        merged, msource = {}, SourceMap(display)
        for i, name in enumerate(_extends_list(raw, source)):
            where = source.locate(("extends", i) if isinstance(raw, list) else ("extends",))
            ppath = self._next(name, path, stack, where)
            pdata, psource = self.load(ppath, _display_path(ppath), stack + (os.path.realpath(path),))
            merged = deep_merge(merged, pdata, msource, psource)
        return deep_merge(merged, data, msource, source), msource

    def _next(self, name: str, path: FsPath, stack: tuple, where: Location) -> FsPath:
        """The preset `name` extended from `path`, after the cycle, depth and count checks."""
        ppath = self.find(name, path.parent, where)
        key = os.path.realpath(ppath)
        if key in stack or key == os.path.realpath(path):
            chain = " → ".join([*(FsPath(s).name for s in stack), path.name, ppath.name])
            raise PresetError(f"extends cycle: {chain}", where)
        if len(stack) >= MAX_DEPTH:
            raise PresetError(f"presets extend each other more than {MAX_DEPTH} deep", where)
        if key not in self.done and len(self.done) >= MAX_FILES:
            raise PresetError(f"more than {MAX_FILES} preset files behind one recipe", where)
        return ppath


def _extends_list(value: Any, source: SourceMap) -> List[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise PresetError("must be a preset name or a list of preset names", source.locate(("extends",)))
    return items


def _display_path(path: FsPath) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def available_presets(recipe_file: str) -> List[str]:
    """Names of the presets a recipe could extend, for --cost comparisons."""
    base = FsPath(recipe_file).parent
    names = {p.stem for d in (base / "presets", base.parent / "presets") if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def _is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name


def find_preset(name: str, base: FsPath, where: Location) -> FsPath:
    """`speed` -> presets/speed.yaml next to the recipe, or one folder up;
    a name ending in .yaml/.yml is a path relative to the recipe."""
    if _is_path(name):
        candidates = [base / name]
    else:
        candidates = [base / "presets" / f"{name}.yaml", base.parent / "presets" / f"{name}.yaml",
                      base / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    known = sorted({p.stem for c in candidates for p in c.parent.glob("*.yaml")} if candidates else [])
    looked = ", ".join(_display_path(c) for c in candidates)
    raise PresetError(f"preset `{name}` not found (looked in {looked}){suggest(name, known)}", where)


def deep_merge(base: Any, over: Any, bsource: SourceMap, osource: SourceMap, path: Path = ()) -> Any:
    """Merge `over` onto `base`; updates `bsource` with `osource`'s marks in place."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        bsource.drop(path)
        _copy_marks(bsource, osource, path)
        return over
    out = dict(base)
    for key, value in over.items():
        sub = path + (key,)
        if value is None:
            # Keep a tombstone so the null also wins over presets merged
            # later in the chain; `_drop_nulls` removes them at the end.
            out[key] = None
            bsource.drop(sub)
        elif key in out:
            out[key] = deep_merge(out[key], value, bsource, osource, sub)
        else:
            out[key] = value
            _copy_marks(bsource, osource, sub)
    return out


def _copy_marks(target: SourceMap, source: SourceMap, prefix: Path) -> None:
    for p in source.under(prefix):
        loc = source.locate(p)
        target.set(p, loc.file, loc.line, loc.col)
