"""Each character's region mask, as the server computes it, in numpy.

The probe must know where a LoRA was allowed to act. Rather than redo the
lowering's geometry (and drift from it when the lowering changes), this
evaluates the graph's own mask nodes, `char.<id>.mask` and what feeds it,
with each node done as ComfyUI does it (comfy_extras/nodes_mask.py, nodes.py):
quirks included. FeatherMask's right and bottom loops index `-x` from x = 0,
so they scale the *first* column/row (index -0 is 0) by 1/f, and the far edge
starts its ramp at 2/f.

Masks are float32 arrays [H, W] at canvas size; `resize` brings one to the
latent grid (or a hires image) exactly as the sampler does: bilinear,
align_corners False, no antialias (comfy/samplers.py, common_upscale).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Dict, Mapping

import numpy as np

from compiler.ir.graph import Graph, Link, Node
from compiler.ir.recipe import Recipe

__all__ = ["character_masks", "evaluate", "feather", "resize", "UnknownMaskNode"]


class UnknownMaskNode(ValueError):
    """A mask node class this module does not know: the lowering grew one."""


def feather(mask: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """FeatherMask.execute, line for line (the -0 quirk on right/bottom kept)."""
    out = mask.astype(np.float32, copy=True)
    h, w = out.shape
    left, right, top, bottom = min(left, w), min(right, w), min(top, h), min(bottom, h)
    for x in range(left):
        out[:, x] *= (x + 1.0) / left
    for x in range(right):
        out[:, -x] *= (x + 1.0) / right
    for y in range(top):
        out[y, :] *= (y + 1.0) / top
    for y in range(bottom):
        out[-y, :] *= (y + 1.0) / bottom
    return out


def _composite(dest: np.ndarray, src: np.ndarray, x: int, y: int, op: str) -> np.ndarray:
    """MaskComposite: src pasted at (x, y), clipped to dest, then clamped to [0, 1]."""
    out = dest.astype(np.float32, copy=True)
    bottom, right = min(y + src.shape[0], out.shape[0]), min(x + src.shape[1], out.shape[1])
    part, patch = out[y:bottom, x:right], src[:bottom - y, :right - x]
    ops = {"add": lambda: part + patch, "subtract": lambda: part - patch, "multiply": lambda: part * patch,
           "and": lambda: (np.round(part).astype(bool) & np.round(patch).astype(bool)).astype(np.float32),
           "or": lambda: (np.round(part).astype(bool) | np.round(patch).astype(bool)).astype(np.float32),
           "xor": lambda: (np.round(part).astype(bool) ^ np.round(patch).astype(bool)).astype(np.float32)}
    out[y:bottom, x:right] = ops[op]()
    return np.clip(out, 0.0, 1.0)


def _axis(size_in: int, size_out: int):
    src = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), size_in - 1)
    return i0, np.minimum(i0 + 1, size_in - 1), (src - i0).astype(np.float32)


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """torch bilinear interpolate (align_corners False) of [H, W] or [H, W, C]."""
    if array.shape[:2] == (height, width):
        return array.astype(np.float32, copy=False)
    y0, y1, ly = _axis(array.shape[0], height)
    x0, x1, lx = _axis(array.shape[1], width)
    channels = (1,) * (array.ndim - 2)
    ly, lx = ly.reshape((-1, 1) + channels), lx.reshape((1, -1) + channels)
    rows = array[y0] * (1 - ly) + array[y1] * ly
    return (rows[:, x0] * (1 - lx) + rows[:, x1] * lx).astype(np.float32)


def _load_image_mask(path: str, channel: str) -> np.ndarray:
    """LoadImageMask: RGBA, the channel / 255, alpha inverted."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.getbands() != ("R", "G", "B", "A"):
            if im.mode == "I":
                im = im.point(lambda v: v * (1 / 255))
            im = im.convert("RGBA")
        c = channel[0].upper()
        mask = np.asarray(im.getchannel(c), dtype=np.float32) / 255.0
    return 1.0 - mask if c == "A" else mask


# class_type -> fn(node, value of an input, local file of a server name) -> array
_Eval = Callable[[Node, Callable[[str], np.ndarray], Mapping[str, str]], np.ndarray]
_NODES: Mapping[str, _Eval] = MappingProxyType({
    "SolidMask": lambda n, v, f: np.full((n.input("height"), n.input("width")), n.input("value"), np.float32),
    "FeatherMask": lambda n, v, f: feather(v("mask"), *(n.input(k, 0) for k in ("left", "top", "right", "bottom"))),
    "MaskComposite": lambda n, v, f: _composite(v("destination"), v("source"), n.input("x"), n.input("y"),
                                                n.input("operation")),
    "InvertMask": lambda n, v, f: 1.0 - v("mask"),
    "LoadImageMask": lambda n, v, f: _load_image_mask(f[n.input("image")], n.input("channel")),
    "MaskToImage": lambda n, v, f: np.repeat(v("mask")[:, :, None], 3, axis=2),
    # Only the lowering's own use: bilinear, crop disabled.
    "ImageScale": lambda n, v, f: resize(v("image"), n.input("height"), n.input("width")),
    "ImageToMask": lambda n, v, f: v("image")[:, :, "rgba".index(n.input("channel")[0])],
})


def evaluate(graph: Graph, node_id: str, files: Mapping[str, str] = MappingProxyType({})) -> np.ndarray:
    """The value of a mask (or image) node: its inputs first, each node once.
    `files` maps a server file name (LoadImageMask's `image`) to a local path."""
    memo: Dict[str, np.ndarray] = {}

    def value(nid: str) -> np.ndarray:
        if nid not in memo:
            node = graph[nid]
            if node.class_type not in _NODES:
                raise UnknownMaskNode(f"node {nid} ({node.class_type}) is not a mask node the probe knows")

            def inp(name: str) -> np.ndarray:
                link = node.input(name)
                return value(link.node) if isinstance(link, Link) else link
            memo[nid] = np.asarray(_NODES[node.class_type](node, inp, files), dtype=np.float32)
        return memo[nid]

    return value(node_id)


def character_masks(recipe: Recipe, graph: Graph) -> Dict[str, np.ndarray]:
    """Character id -> its region mask at canvas size. A character without a
    `char.<id>.mask` node (a `full` region) conditions everywhere: all ones."""
    files = {f.name: f.path for f in recipe.inputs}
    shape = (recipe.canvas.height, recipe.canvas.width)
    return {c.id: (evaluate(graph, f"char.{c.id}.mask", files) if f"char.{c.id}.mask" in graph
                   else np.ones(shape, np.float32))
            for c in recipe.characters}
