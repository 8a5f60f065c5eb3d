"""Resolve pass, local input files: `image.file` and painted masks.

These are the only files a recipe sends to a server (`recipe run` uploads
them to /upload/image), so each is checked before anything reads its
content into the recipe: it must be admitted by the recipe's roots
(resolve/access.py), be a regular file of at most MAX_BYTES (read at most
one byte more), and open as an image with Pillow, within MAX_PIXELS. Only
then is it hashed for its content-derived server name.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path as FsPath
from typing import List

from compiler.errors import Location, RecipeError, SchemaError
from compiler.files import FileRefused, read_regular
from compiler.ir.recipe import InputFile
from compiler.resolve.access import Roots
from compiler.source import key_path

__all__ = ["attach_inputs", "MAX_BYTES", "MAX_PIXELS"]

MAX_BYTES = 64 * 1024 * 1024   # a photograph or a mask, not a data set
MAX_PIXELS = 16384 * 16384     # the largest canvas a recipe may ask for


def attach_inputs(doc: dict, ctx) -> dict:
    """Image and painted-mask paths become absolute (relative to the file that
    wrote them), so the resolved recipe works from its run folder too, and
    each file gets its content-derived server name."""
    places = [("image", "file")] if "image" in doc else []
    places += [("characters", cid, "region", "mask") for cid, c in doc["characters"].items()
               if "mask" in c["region"]]
    roots = ctx.roots or Roots.of(ctx.file)
    problems: List[RecipeError] = []
    for path in places:
        node = doc
        for part in path[:-1]:
            node = node[part]
        where = ctx.loc(*path)
        try:
            full, data = _read_input(node[path[-1]], where, roots)
        except RecipeError as exc:
            problems.append(exc)
            continue
        node[path[-1]] = str(full)
        ctx.files[key_path(path)] = InputFile(key_path(path), str(full),
                                              f"{hashlib.sha256(data).hexdigest()[:12]}-{full.name}")
    if problems:
        raise SchemaError(problems)
    if "image" in doc:
        doc["image"].setdefault("resize", "crop")
    return doc


def _read_input(name: str, where: Location, roots: Roots):
    """(real path, bytes) of one image or mask, or a RecipeError at `where`."""
    written_in = where.file if where.file not in ("--set", "--preset") else ""
    full = (FsPath(written_in).parent / name) if written_in else FsPath(name)
    if not roots.admits(str(full)):   # before any read: not even its size is looked at
        raise RecipeError(roots.refusal(name), where)
    real = full.resolve()
    try:
        data = read_regular(real, MAX_BYTES)
    except FileRefused as exc:
        raise RecipeError(f"cannot use `{name}`: {exc}", where) from None
    except OSError:
        raise RecipeError(f"file `{name}` not found (looked at {full})", where) from None
    problem = _not_an_image(data)
    if problem:
        raise RecipeError(f"`{name}` is not an image Pillow can read: {problem}", where)
    return real, data


def _not_an_image(data: bytes) -> str:
    """'' for an image within MAX_PIXELS, else why not."""
    from PIL import Image, UnidentifiedImageError   # only recipes with inputs pay for Pillow
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                return f"{im.width}x{im.height} is more than {MAX_PIXELS} pixels"
            im.verify()
    except UnidentifiedImageError:
        return "not a known image format"
    except Exception as exc:   # Pillow's own errors for a broken file are of many types
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ""
