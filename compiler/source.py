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
        for path, (line, col) in (marks or {}).items():
            self.set(path, file, line, col)

    def set(self, path: Path, file: str, line: int, col: int) -> None:
        self._marks[tuple(path)] = (line, col)
        self._files[tuple(path)] = file

    def update(self, other: "SourceMap", prefix: Path = ()) -> None:
        """Take `other`'s marks (a later preset wins, as in the merge itself)."""
        for path, (line, col) in other._marks.items():
            self.set(prefix + path, other._files[path], line, col)

    def drop(self, path: Path) -> None:
        """Forget `path` and everything under it (a `null` removed the value)."""
        n = len(path)
        for p in [p for p in self._marks if p[:n] == tuple(path)]:
            del self._marks[p], self._files[p]

    def locate(self, path: Path) -> Location:
        path = tuple(path)
        probe = path
        while probe and probe not in self._marks:
            probe = probe[:-1]
        line, col = self._marks.get(probe, (0, 0))
        return Location(self._files.get(probe, self.file), line, col, key_path(path))

    def paths(self) -> list:
        return list(self._marks)
