"""Where every value of a recipe came from.

A key path is a tuple of mapping keys and list indices: ("characters", "roxy",
"strength", "model"). `SourceMap` maps each path to the `Location` of the key
that holds it, so any later stage can point a user at `file:line:col`.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Tuple, Union

from compiler.errors import Location

__all__ = ["Path", "SourceMap", "key_path", "parse_key_path"]

Path = Tuple[Union[str, int], ...]


def key_path(path: Iterable[Union[str, int]]) -> str:
    """("characters", "roxy", "strength") -> "characters.roxy.strength"; ints -> "[0]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_key_path(text: str) -> Path:
    """The inverse of `key_path` for the dotted form users type in `--set`."""
    parts: list = []
    for chunk in text.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest[1:] if rest.startswith("[") else rest
    return tuple(parts)


class SourceMap:
    """Path -> (file, line, col). Looking up a path nobody wrote falls back to
    its nearest written ancestor, so a missing key points at its parent."""

    def __init__(self, file: str, marks: Optional[Mapping[Path, Tuple[int, int]]] = None):
        self.file = file
        self._marks: dict = {}
        self._files: dict = {}
        # parent path -> the paths set directly below it: `under` and `drop` then cost
        # what they touch, not the whole map (a recipe of 30000 vars merged key by key).
        self._below: dict = {}
        for path, (line, col) in (marks or {}).items():
            self.set(path, file, line, col)

    def set(self, path: Path, file: str, line: int, col: int) -> None:
        path = tuple(path)
        if path not in self._marks:
            for i in range(len(path)):
                self._below.setdefault(path[:i], set()).add(path[:i + 1])
        self._marks[path] = (line, col)
        self._files[path] = file

    def __deepcopy__(self, memo) -> "SourceMap":
        # Keys are tuples of str/int and values (line, col) or a file name: all
        # immutable, so copying the dicts is a deep copy, and far cheaper than one.
        new = SourceMap(self.file)
        new._marks, new._files = dict(self._marks), dict(self._files)
        new._below = {k: set(v) for k, v in self._below.items()}
        return new

    def under(self, prefix: Path) -> list:
        """`prefix` (if marked) and every marked path below it."""
        out, todo = [], [tuple(prefix)]
        while todo:
            p = todo.pop()
            if p in self._marks:
                out.append(p)
            todo.extend(self._below.get(p, ()))
        return out

    def update(self, other: "SourceMap", prefix: Path = ()) -> None:
        """Take `other`'s marks (a later preset wins, as in the merge itself)."""
        for path, (line, col) in other._marks.items():
            self.set(prefix + path, other._files[path], line, col)

    def drop(self, path: Path) -> None:
        """Forget `path` and everything under it (a `null` removed the value)."""
        path = tuple(path)
        for p in self.under(path):
            del self._marks[p], self._files[p]
        todo = [path]
        while todo:   # forget the index below it too, and `path` in its parent's
            todo.extend(self._below.pop(todo.pop(), ()))
        if path:
            self._below.get(path[:-1], set()).discard(path)

    def locate(self, path: Path) -> Location:
        path = tuple(path)
        probe = path
        while probe and probe not in self._marks:
            probe = probe[:-1]
        line, col = self._marks.get(probe, (0, 0))
        return Location(self._files.get(probe, self.file), line, col, key_path(path))

    def paths(self) -> list:
        return list(self._marks)
