"""What a recipe may read: the trust boundary of every file a recipe names.

Recipes are shared (git, chat, a colleague's folder), so a recipe names
files only under its own folder (which holds its `presets/`) and the
`../presets` folder the preset lookup searches. That covers `extends:`,
`--preset`, `image.file` and painted masks, wherever they are written
(the recipe, a preset, `--set`, a variant). `--allow-path DIR` widens it.
Paths are compared after resolving symlinks, so a link inside the folder
that points out of it is refused like the path it names.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Tuple

__all__ = ["ANYWHERE", "Roots"]

ANYWHERE = ("/",)   # allow= for files recipe wrote itself (a run folder's recipe.resolved.yaml)


@dataclass(frozen=True)
class Roots:
    """The folders a recipe may read files from (real paths)."""

    dirs: Tuple[str, ...]

    @classmethod
    def of(cls, recipe_path: str, allow: Iterable[str] = ()) -> "Roots":
        """The recipe's folder, the ../presets beside it, and each `allow` folder."""
        base = os.path.realpath(os.path.dirname(os.path.abspath(recipe_path)))
        extra = tuple(os.path.realpath(a) for a in allow)
        return cls((base, os.path.join(os.path.dirname(base), "presets"), *extra))

    def admits(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in self.dirs)

    def refusal(self, shown: str) -> str:
        """The message for a path this does not admit."""
        return (f"`{shown}` is outside the recipe's folder and its presets: a recipe reads no other "
                f"files (allow a folder with --allow-path DIR)")
