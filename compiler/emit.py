"""Writing what the pipeline produced: the resolved recipe as YAML, graphs as
JSON, always atomically (write a temporary file beside the target, fsync,
rename), so an interrupted write never leaves half a file that looks whole.
"""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Union

import yaml

from . import __version__
from .recipe import Recipe
from .schema import load_schema
from .templates import protect

__all__ = ["resolved_yaml", "write_atomic"]


def resolved_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe. It compiles to the identical graph: presets
    are merged in, defaults written out, prompts rendered (and protected so a
    literal `{{` in a rendered prompt stays literal)."""
    doc = copy.deepcopy(dict(recipe.document))
    for key in ("scene", "negative"):
        doc[key] = protect(doc[key])
    for char in doc.get("characters", {}).values():
        char["prompt"] = protect(char["prompt"])
    doc["version"] = 1
    order = list(load_schema()["properties"])   # the schema's order reads top-down like a recipe
    doc = {k: doc[k] for k in sorted(doc, key=lambda k: order.index(k) if k in order else len(order))}
    header = f"# Resolved by recipe {__version__} from {recipe.source}. Compiles to the same graph.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000,
                                   default_flow_style=False)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Union[str, Path], data: Union[str, bytes]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
