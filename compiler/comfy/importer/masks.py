"""Mask chains of core nodes, evaluated symbolically, then mapped to regions.

A mask made of SolidMask, FeatherMask, MaskComposite (add, subtract) and
InvertMask is a sum of terms `coef * X(x) * Y(y)`: each axis an interval
times the FeatherMask ramps applied to it (FeatherMask multiplies whole
columns and rows, so the product form survives every one of these nodes).
The ramps are ComfyUI's own, quirk included: the right/bottom loop indexes
`-x` from x = 0, so the array's first column gets an extra 1/right factor
(REFERENCE, FeatherMask). Nothing is rasterised: an axis is at most a few
thousand values, compared one dimension at a time.

A term maps to a region when it is exactly what the lowering emits for some
box and feather (lower/steps.py `_feathered_box`, rebuilt here as
`compiled_term` to compare against, since comfy/ must not import the
lowering); `1 - term` maps to the other half of a two-way split.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple, Union

from compiler.comfy.importer.graph import Ref, SNode, Walk
from compiler.ir import regions
from compiler.ir.recipe import Box

__all__ = ["Op", "Axis", "Term", "MaskExpr", "Painted", "NotBoxes", "evaluate", "region_of", "compiled_term",
           "TOLERANCE"]

TOLERANCE = 1 / 255       # "the same mask": within one 8-bit step everywhere


@dataclass(frozen=True)
class Op:
    """One FeatherMask on an array that spanned [a, b) of this axis."""
    a: int
    b: int
    lo: int
    hi: int

    def factors(self) -> Dict[int, float]:
        n = self.b - self.a
        lo, hi = min(self.lo, n), min(self.hi, n)
        out: Dict[int, float] = {}
        for k in range(lo):
            out[self.a + k] = out.get(self.a + k, 1.0) * (k + 1) / lo
        for k in range(hi):
            i = self.a if k == 0 else self.b - k       # output[..., -k]: -0 is the first column
            out[i] = out.get(i, 1.0) * (k + 1) / hi
        return {i: f for i, f in out.items() if f != 1.0}


@dataclass(frozen=True)
class Axis:
    start: int
    end: int
    ops: Tuple[Op, ...] = ()

    def values(self, n: int) -> List[float]:
        out = [1.0 if self.start <= i < self.end else 0.0 for i in range(n)]
        for op in self.ops:
            for i, f in op.factors().items():
                if 0 <= i < n:
                    out[i] *= f
        return out

    def with_op(self, op: Op) -> "Axis":
        touched = [i for i in op.factors() if self.start <= i < self.end]
        return replace(self, ops=self.ops + (op,)) if touched else self

    def shifted(self, by: int, limit: int) -> Optional["Axis"]:
        start, end = self.start + by, min(self.end + by, limit)
        if start >= end:
            return None
        return Axis(start, end, tuple(Op(o.a + by, o.b + by, o.lo, o.hi) for o in self.ops))


@dataclass(frozen=True)
class Term:
    coef: float
    x: Axis
    y: Axis


@dataclass(frozen=True)
class MaskExpr:
    width: int
    height: int
    terms: Tuple[Term, ...]

    def full(self) -> Term:
        return Term(1.0, Axis(0, self.width), Axis(0, self.height))


@dataclass(frozen=True)
class Painted:
    """A mask from an image file: a painted-mask region."""
    name: str
    channel: str
    scaled: bool        # through the compiler's MaskToImage -> ImageScale -> ImageToMask


class NotBoxes(Exception):
    def __init__(self, node: Optional[SNode], reason: str):
        super().__init__(reason)
        self.node, self.reason = node, reason


Mask = Union[MaskExpr, Painted]


def _merge(width: int, height: int, terms) -> MaskExpr:
    acc: Dict[Tuple[Axis, Axis], float] = {}
    for t in terms:
        acc[(t.x, t.y)] = acc.get((t.x, t.y), 0.0) + t.coef
    return MaskExpr(width, height, tuple(Term(c, x, y) for (x, y), c in acc.items() if abs(c) > 1e-9))


def _disjoint(terms) -> bool:
    for i, a in enumerate(terms):
        for b in terms[i + 1:]:
            if a.x.start < b.x.end and b.x.start < a.x.end and a.y.start < b.y.end and b.y.start < a.y.end:
                return False
    return True


def _unclipped(m: MaskExpr) -> bool:
    """MaskComposite clamps to [0, 1]; true when that changes nothing."""
    full = m.full()
    base = [t for t in m.terms if (t.x, t.y) == (full.x, full.y) and math.isclose(t.coef, 1.0)]
    rest = [t for t in m.terms if t not in base]
    if base:
        return all(-1.0 - 1e-9 <= t.coef < 0 for t in rest) and _disjoint(rest)
    return all(0 < t.coef <= 1.0 + 1e-9 for t in rest) and _disjoint(rest)


# -- evaluating the nodes ------------------------------------------------------------

def evaluate(walk: Walk, ref: Ref) -> Mask:
    node = walk.node(ref)
    step = _NODES.get(node.class_type)
    if step is None or (node.class_type == "LoadImage" and ref.slot != 1):
        raise NotBoxes(node, f"a mask from {node.class_type}, which the importer cannot evaluate (no server runs "
                             "during import); a recipe region is a box, a split or a painted mask file")
    walk.claimed.add(node.id)
    return step(walk, node)


def _expr(walk: Walk, node: SNode, name: str) -> MaskExpr:
    ref = walk.link(node, name)
    if ref is None:
        raise NotBoxes(node, f"input `{name}` is not connected")
    got = evaluate(walk, ref)
    if isinstance(got, Painted):
        raise NotBoxes(node, "a painted mask combined with other masks: a recipe uses a painted mask as it is")
    return got


def _int(walk: Walk, node: SNode, name: str, default: int = 0) -> int:
    value = walk.value(node, name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NotBoxes(node, f"`{name}` is {value!r}, not a pixel count")
    return value


def _solid(walk: Walk, node: SNode) -> MaskExpr:
    w, h, v = _int(walk, node, "width", 512), _int(walk, node, "height", 512), walk.number(node, "value", 1.0)
    return _merge(w, h, [Term(v, Axis(0, w), Axis(0, h))])


def _feather(walk: Walk, node: SNode) -> MaskExpr:
    m = _expr(walk, node, "mask")
    l, t, r, b = (_int(walk, node, k) for k in ("left", "top", "right", "bottom"))
    ox, oy = Op(0, m.width, l, r), Op(0, m.height, t, b)
    return _merge(m.width, m.height, [Term(t_.coef, t_.x.with_op(ox) if l or r else t_.x,
                                           t_.y.with_op(oy) if t or b else t_.y) for t_ in m.terms])


def _composite(walk: Walk, node: SNode) -> MaskExpr:
    dest, src = _expr(walk, node, "destination"), _expr(walk, node, "source")
    x, y, op = _int(walk, node, "x"), _int(walk, node, "y"), walk.value(node, "operation", "multiply")
    if op not in ("add", "subtract"):
        raise NotBoxes(node, f"MaskComposite `{op}`: only add and subtract reduce to boxes")
    sign = 1.0 if op == "add" else -1.0
    moved = []
    for t in src.terms:
        ax, ay = t.x.shifted(x, dest.width), t.y.shifted(y, dest.height)
        if ax and ay:
            moved.append(Term(sign * t.coef, ax, ay))
    out = _merge(dest.width, dest.height, list(dest.terms) + moved)
    if not _unclipped(out):
        raise NotBoxes(node, "overlapping masks added or subtracted, so the result is clipped to [0, 1]: "
                             "not a region a recipe makes")
    return out


def _invert(walk: Walk, node: SNode) -> MaskExpr:
    m = _expr(walk, node, "mask")
    return _merge(m.width, m.height, [m.full()] + [Term(-t.coef, t.x, t.y) for t in m.terms])


def _load_mask(walk: Walk, node: SNode) -> Painted:
    return Painted(str(walk.value(node, "image", "")), str(walk.value(node, "channel", "alpha")), False)


def _load_image(walk: Walk, node: SNode) -> Painted:
    # LoadImage's MASK is 1 - alpha, the same as LoadImageMask's alpha channel (nodes.py)
    return Painted(str(walk.value(node, "image", "")), "alpha", False)


def _image_to_mask(walk: Walk, node: SNode) -> Painted:
    """The compiler's painted mask: LoadImageMask -> MaskToImage -> ImageScale -> ImageToMask(red)."""
    scale = walk.take(walk.link(node, "image"), ("ImageScale",), "a painted mask is scaled with ImageScale here")
    back = scale and walk.take(walk.link(scale, "image"), ("MaskToImage",), "expected MaskToImage")
    load = back and walk.take(walk.link(back, "mask"), ("LoadImageMask",), "expected LoadImageMask")
    if load is None:
        raise NotBoxes(node, "ImageToMask of something other than a scaled painted mask")
    got = _load_mask(walk, load)
    return replace(got, scaled=True)


_NODES = {"SolidMask": _solid, "FeatherMask": _feather, "MaskComposite": _composite, "InvertMask": _invert,
          "LoadImageMask": _load_mask, "LoadImage": _load_image, "ImageToMask": _image_to_mask}


# -- mapping to regions ----------------------------------------------------------------

def compiled_term(box: Box, f: int, width: int, height: int) -> Term:
    """The mask the lowering makes for `box` with feather `f` (_feathered_box)."""
    area, a = regions.feathered_extent(box, f, width, height)
    ax, ay = Axis(area.x, area.right), Axis(area.y, area.bottom)
    if a["left"] or a["right"]:
        ax = ax.with_op(Op(area.x, area.right, a["left"], a["right"]))
    if a["top"] or a["bottom"]:
        ay = ay.with_op(Op(area.y, area.bottom, a["top"], a["bottom"]))
    return Term(1.0, ax, ay)


def _same_axis(a: Axis, b: Axis, n: int) -> bool:
    return a == b or max(abs(p - q) for p, q in zip(a.values(n), b.values(n))) <= TOLERANCE / 2


def _feathers(t: Term) -> List[int]:
    return sorted({v for op in t.x.ops + t.y.ops for v in (op.lo, op.hi) if v > 0}, reverse=True)


def box_of(t: Term, width: int, height: int, prefer: int) -> Optional[Tuple[Box, int]]:
    """The (box, feather) whose compiled mask is `t`, or None."""
    for f in dict.fromkeys([prefer] + _feathers(t) + [0]):
        x = t.x.start + f // 2 if t.x.start > 0 else 0
        y = t.y.start + f // 2 if t.y.start > 0 else 0
        right = t.x.end - (f - f // 2) if t.x.end < width else width
        bottom = t.y.end - (f - f // 2) if t.y.end < height else height
        if right <= x or bottom <= y:
            continue
        box = Box(x, y, right - x, bottom - y)
        c = compiled_term(box, f, width, height)
        if _same_axis(c.x, t.x, width) and _same_axis(c.y, t.y, height):
            return box, f
    return None


def spec_of(box: Box, width: int, height: int) -> dict:
    """The plainest full-form region whose box is `box`."""
    if (box.x, box.y, box.w, box.h) == (0, 0, width, height):
        return {"full": True}
    for axis, pos, size, total, cross in (("columns", box.x, box.w, width, (box.y, box.h) == (0, height)),
                                          ("rows", box.y, box.h, height, (box.x, box.w) == (0, width))):
        if not cross:
            continue
        for n in range(2, 9):
            for i in range(n):
                if regions.region_box({axis: [1] * n, "index": i}, width, height) == box:
                    return {axis: [1] * n, "index": i}
        parts = [p for p in (pos, size, total - pos - size) if p > 0]
        index = 0 if pos == 0 else 1
        g = math.gcd(*parts)
        for ratios in _small_ratios(len(parts)) + [[p // g for p in parts]]:
            spec = {axis: ratios, "index": index}
            if regions.region_box(spec, width, height) == box:
                return spec
    return {"box": [box.x, box.y, box.w, box.h], "units": "px"}


def _small_ratios(n: int, top: int = 9) -> list:
    """[1, 2], [2, 1], [1, 3], ... by total: the split a person would write."""
    combos = [list(c) for c in itertools.product(range(1, top + 1), repeat=n) if math.gcd(*c) == 1]
    return sorted(combos, key=lambda c: (sum(c), c))


@dataclass(frozen=True)
class RegionGuess:
    spec: dict                  # full form without the feather
    feather: int
    complement_of: Optional[dict] = None    # the split half this one inverts


def region_of(mask: MaskExpr, width: int, height: int, prefer: int) -> RegionGuess:
    """The recipe region a box mask stands for; NotBoxes(None, why) if none."""
    if (mask.width, mask.height) != (width, height):
        raise NotBoxes(None, f"the mask is {mask.width}x{mask.height} but the canvas {width}x{height}: "
                             "ComfyUI stretches it, a recipe region is drawn on the canvas")
    terms, full = list(mask.terms), mask.full()
    if not terms:
        raise NotBoxes(None, "an empty mask: no part of the canvas is this character's")
    if len(terms) == 1 and math.isclose(terms[0].coef, 1.0):
        return _direct(terms[0], width, height, prefer)
    base = [t for t in terms if (t.x, t.y) == (full.x, full.y) and math.isclose(t.coef, 1.0)]
    if len(terms) == 2 and base and math.isclose(sum(t.coef for t in terms), 0.0):
        other = next(t for t in terms if t is not base[0])
        half = _direct(Term(1.0, other.x, other.y), width, height, prefer)
        axis = next((a for a in ("columns", "rows") if a in half.spec and len(half.spec[a]) == 2), None)
        if axis is None:
            raise NotBoxes(None, "everything but a box: a recipe region can be the other half of a two-way "
                                 "split, not the rest of the canvas around a box")
        return RegionGuess({axis: half.spec[axis], "index": 1 - half.spec["index"]}, half.feather, half.spec)
    raise NotBoxes(None, f"{len(terms)} overlapping boxes: not one region")


def _direct(t: Term, width: int, height: int, prefer: int) -> RegionGuess:
    found = box_of(t, width, height, prefer)
    if found is None:
        raise NotBoxes(None, f"a box from x {t.x.start} to {t.x.end}, y {t.y.start} to {t.y.end} whose soft edges "
                             "are not the ones a recipe region makes (one feather on every inner edge, none on "
                             "the canvas border)")
    box, f = found
    return RegionGuess(spec_of(box, width, height), f)
