"""Region geometry: shorthand -> full form -> pixel boxes, and coverage.

Full forms (what recipe.resolved.yaml shows):
    {columns: [r0, r1, ...], index: i, feather: f}
    {rows: [r0, r1, ...], index: i, feather: f}
    {box: [x, y, w, h], units: px|fraction, feather: f}
    {full: true, feather: f}
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from compiler.ir.frozen import freeze, thaw
from compiler.ir.recipe import Box

__all__ = ["expand_region", "auto_region", "region_box", "default_feather", "covers", "complement", "grown_box",
           "feathered_extent"]

_NAMED = freeze({
    "left": {"columns": [1, 1], "index": 0},
    "right": {"columns": [1, 1], "index": 1},
    "top": {"rows": [1, 1], "index": 0},
    "bottom": {"rows": [1, 1], "index": 1},
    "full": {"full": True},
})
GRID = 8   # the VAE's downscale factor: region edges land on latent pixels


def expand_region(value: Any) -> Any:
    """Shorthand -> full form. Values that are not a known shorthand pass
    through untouched, for the schema to judge."""
    if isinstance(value, str) and value in _NAMED:
        return thaw(_NAMED[value])
    if isinstance(value, dict):
        out = dict(value)
        for axis in ("columns", "rows"):
            if isinstance(out.get(axis), int) and not isinstance(out.get(axis), bool):
                out[axis] = [1] * out[axis]
        if isinstance(out.get("box"), list) and "units" not in out and all(
                isinstance(v, (int, float)) for v in out["box"]):
            out["units"] = "fraction" if all(v <= 1 for v in out["box"]) else "px"
        return out
    return value


def auto_region(index: int, count: int) -> dict:
    """Characters without a region share the canvas in columns, in order."""
    return {"full": True} if count == 1 else {"columns": [1] * count, "index": index}


def default_feather(width: int, height: int) -> int:
    """48 px at 896x896, scaled with the canvas area and snapped to the latent
    grid: 32 px at 768, 88 px at 1216, which is what the artists tuned by eye.
    Never below one latent cell, or small drafts would get a hard seam."""
    return max(GRID, GRID * round(6 * width * height / (896 * 896)))


def _split(total: int, ratios: List[float], index: int) -> Tuple[int, int]:
    s = float(sum(ratios))
    edges = [0] + [GRID * round(total * sum(ratios[:k + 1]) / s / GRID) for k in range(len(ratios))]
    edges[-1] = total
    return edges[index], edges[index + 1] - edges[index]


def region_box(region: Dict[str, Any], width: int, height: int) -> Optional[Box]:
    """Pixel box of a full-form region, or None when it does not fit the canvas."""
    if "columns" in region:
        ratios, i = region["columns"], region["index"]
        if i >= len(ratios):
            return None
        x, w = _split(width, ratios, i)
        return Box(x, 0, w, height)
    if "rows" in region:
        ratios, i = region["rows"], region["index"]
        if i >= len(ratios):
            return None
        y, h = _split(height, ratios, i)
        return Box(0, y, width, h)
    if "box" in region:
        x, y, w, h = region["box"]
        if region.get("units") == "fraction":
            x, y, w, h = x * width, y * height, w * width, h * height
        box = Box(round(x), round(y), round(w), round(h))
        if box.w <= 0 or box.h <= 0 or box.right > width or box.bottom > height:
            return None
        return box
    return Box(0, 0, width, height)     # full, or a painted mask: its shape is the image's


def covers(boxes: Iterable[Box], width: int, height: int) -> bool:
    """True when the boxes leave no latent pixel of the canvas to no one."""
    cols, rows = -(-width // GRID), -(-height // GRID)
    seen = bytearray(cols * rows)
    for b in boxes:
        for r in range(b.y // GRID, -(-b.bottom // GRID)):
            for c in range(b.x // GRID, -(-b.right // GRID)):
                seen[r * cols + c] = 1
    return all(seen)


def complement(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """True when b is exactly the other half of a's two-way split, so b's mask
    can be InvertMask(a's mask): sums to 1 everywhere, one node."""
    for axis in ("columns", "rows"):
        if axis in a and axis in b and len(a[axis]) == 2 and a[axis] == b[axis]:
            return {a["index"], b["index"]} == {0, 1} and a.get("feather") == b.get("feather")
    return False


def grown_box(box: Box, margin: int, grid: int, width: int, height: int) -> Box:
    """`box` grown by `margin` on every side, snapped outwards to the latent
    grid and clamped to the canvas: refine's crop."""
    x0 = max(0, (box.x - margin) // grid * grid)
    y0 = max(0, (box.y - margin) // grid * grid)
    x1 = min(width, -(-(box.right + margin) // grid) * grid)
    y1 = min(height, -(-(box.bottom + margin) // grid) * grid)
    return Box(x0, y0, x1 - x0, y1 - y0)


def feathered_extent(box: Box, feather: int, width: int, height: int) -> Tuple[Box, Dict[str, int]]:
    """Where a region's mask is drawn and how it ramps: the box widened by half
    the feather across each interior edge (clamped to the canvas), and the
    FeatherMask amount per edge (the full feather on interior edges, 0 on the
    canvas border), so two neighbours' ramps cross at the seam and sum to 1.
    The lowering builds this; the importer recognises it."""
    half = feather // 2
    x0 = max(0, box.x - half if box.x > 0 else 0)
    y0 = max(0, box.y - half if box.y > 0 else 0)
    x1 = min(width, box.right + (feather - half) if box.right < width else width)
    y1 = min(height, box.bottom + (feather - half) if box.bottom < height else height)
    inner = {"left": box.x > 0, "top": box.y > 0, "right": box.right < width, "bottom": box.bottom < height}
    span = {"left": x1 - x0, "right": x1 - x0, "top": y1 - y0, "bottom": y1 - y0}
    amounts = {e: min(feather, span[e]) if on and feather > 0 else 0 for e, on in inner.items()}
    return Box(x0, y0, x1 - x0, y1 - y0), amounts
