"""The compile cache: a compiled graph and its findings, reused while nothing
it was made from has changed. Owned by its caller (the CLI makes one per
command); `pipeline.compile(..., cache=CompileCache(folder))` uses it.

An entry is found by what the command asked for: the recipe path as given,
the working directory (error locations print paths relative to it), --set,
--preset, strict, the `recipe` version and the size and mtime of recipe's own
code. It is used only when every file it was made from still hashes the same:
the recipe, each preset it merged (extends: and --preset), each image and mask
input; and a preset file of the same name must not have appeared where it
would now be found first. A hit
skips the loader, jinja2, jsonschema and lowering.

Entries are pickles under the user's own cache folder, read back with an
unpickler that builds only compiler's own classes and plain containers, so a
planted file cannot run code.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from compiler._version import __version__
from compiler.files import write_atomic

__all__ = ["CompileCache", "default_cache"]

_FORMAT = 1
_PLAIN = frozenset({("builtins", n) for n in ("frozenset", "set", "tuple", "list", "dict", "int", "float",
                                              "str", "bytes", "bool", "complex")})
_PRESET_DIRS = (".", "presets", "../presets")   # where presets.find_preset looks, from the recipe's folder


class CompileCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.hits = self.misses = 0

    def get(self, path: str, overrides: Sequence[str], presets: Sequence[str], strict: bool,
            allow: Sequence[str] = ()) -> Optional[Any]:
        """The Compiled kept for this request, if nothing it depends on changed."""
        entry = self._read(self._key(path, overrides, presets, strict, allow))
        if entry is None or entry.get("format") != _FORMAT or not _unchanged(entry):
            self.misses += 1
            return None
        self.hits += 1
        return entry["compiled"]

    def put(self, path: str, overrides: Sequence[str], presets: Sequence[str], strict: bool,
            compiled: Any, files: Sequence[str], allow: Sequence[str] = ()) -> None:
        """Keep `compiled`, made from the recipe files `files` (recipe and presets, as read)."""
        inputs = [f.path for f in compiled.recipe.inputs]
        deps = {p: _digest(p) for p in dict.fromkeys([*map(os.path.abspath, files), *inputs])}
        entry = {"format": _FORMAT, "files": deps, "probes": _probes(files), "compiled": compiled}
        try:
            write_atomic(self.folder / f"{self._key(path, overrides, presets, strict, allow)}.pickle",
                         pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL), durable=False)
        except OSError:
            pass   # a cache that cannot be written (or is torn by a power cut) only costs a compile

    def _key(self, path: str, overrides: Sequence[str], presets: Sequence[str], strict: bool,
             allow: Sequence[str] = ()) -> str:
        # --allow-path is part of the question: a recipe refused without it must not come back from the cache
        ask = [__version__, _code_stamp(), os.getcwd(), os.fspath(path), list(overrides), list(presets), strict,
               sorted(os.path.realpath(a) for a in allow)]
        return hashlib.sha256(json.dumps(ask).encode()).hexdigest()[:32]

    def _read(self, key: str) -> Optional[dict]:
        try:
            data = (self.folder / f"{key}.pickle").read_bytes()
            entry = _Restricted(io.BytesIO(data)).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None


def default_cache() -> Optional[CompileCache]:
    """The CLI's: ~/.cache/recipe/compiled (XDG_CACHE_HOME), none with RECIPE_NO_CACHE=1."""
    if os.environ.get("RECIPE_NO_CACHE"):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return CompileCache(Path(home) / "recipe" / "compiled")


def _probes(files: Sequence[str]) -> Dict[str, bool]:
    """Where a preset of the same name could be found instead of the one
    read (presets.find_preset's places, from each file's folder), and whether
    something is there: a new file there would now win."""
    stems = {Path(f).stem for f in files[1:]}
    folders = {Path(f).resolve().parent for f in files}
    places = {os.path.normpath(folder / sub / f"{stem}.yaml") for folder in folders for sub in _PRESET_DIRS
              for stem in stems}
    return {p: os.path.isfile(p) for p in sorted(places)}


def _unchanged(entry: dict) -> bool:
    files, probes = entry.get("files"), entry.get("probes")
    if not isinstance(files, dict) or not isinstance(probes, dict):
        return False
    return all(_digest(p) == h for p, h in files.items()) and all(os.path.isfile(p) == e for p, e in probes.items())


def _digest(path: str) -> Optional[str]:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _code_stamp() -> str:
    """recipe's own source and schema, by size and mtime: an edited checkout
    (same version number) must not reuse graphs the old code made."""
    here = Path(__file__).resolve().parent
    stamps = []
    folders = [here, here.parent / "schema", *(p for p in here.iterdir() if p.is_dir() and p.name != "__pycache__")]
    for folder in (f for f in folders if f.is_dir()):   # ../schema: where an editable checkout keeps it
        for item in os.scandir(folder):
            if item.name.endswith((".py", ".json")):
                st = item.stat()
                stamps.append(f"{item.path}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(stamps)).encode()).hexdigest()


class _Restricted(pickle.Unpickler):
    """Only compiler's own classes and plain containers come back."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PLAIN or (module.startswith("compiler.") and "." not in name):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"not allowed in a compile cache entry: {module}.{name}")
