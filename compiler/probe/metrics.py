"""What a LoRA changed, and where: reading the renders, |Δ| maps, and the numbers.

For a character X with a LoRA, and Δ = |render_X − baseline| averaged over
channels (latents) or RGB (images, on a 0..1 scale):
    effect   = mean Δ where X's mask is 1
    leak[R]  = mean Δ where R's mask is 1 and X's mask is 0 (beyond the
               feather), ÷ effect
    share    = ΣΔ where X's mask is 1 ÷ ΣΔ everywhere
Mask values are floats: "is 1" and "is 0" allow a float32 rounding's slack.
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional

import numpy as np

__all__ = ["read_latent", "read_image", "latent_delta", "image_delta", "measure", "max_leak", "ONE", "ZERO"]

ONE, ZERO = 1.0 - 1e-4, 1e-4    # thresholds for "mask is 1" and "mask is 0"


def _bf16(raw: bytes) -> np.ndarray:
    """bfloat16 is the top half of a float32: numpy has no dtype for it."""
    return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)


_DTYPES = {"F32": lambda raw: np.frombuffer(raw, "<f4"), "F16": lambda raw: np.frombuffer(raw, "<f2"),
           "F64": lambda raw: np.frombuffer(raw, "<f8"), "BF16": _bf16}


def read_latent(data: bytes, name: str = "latent_tensor") -> np.ndarray:
    """The latent a SaveLatent file holds, as float32 [B, C, H, W].

    The file is safetensors: an 8-byte little-endian header length, a JSON
    header {name: {dtype, shape, data_offsets}}, then the raw tensors.
    Raises ValueError with the reason when it is not such a file."""
    if len(data) < 8:
        raise ValueError("too short for a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("its header runs past the end of the file")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        raise ValueError("its header is not JSON") from None
    entry = header.get(name) if isinstance(header, dict) else None
    if not isinstance(entry, dict):
        raise ValueError(f"it has no `{name}` tensor")
    dtype, shape, (start, end) = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets", (0, 0))
    if dtype not in _DTYPES:
        raise ValueError(f"its dtype {dtype} is not one of {', '.join(_DTYPES)}")
    raw = data[8 + size + start: 8 + size + end]
    if len(raw) != end - start or end < start:
        raise ValueError(f"its `{name}` data is cut short ({len(raw)} of {end - start} bytes)")
    values = _DTYPES[dtype](raw)
    if not isinstance(shape, list) or len(shape) != 4 or values.size != int(np.prod(shape)):
        raise ValueError(f"`{name}` has shape {shape} and {values.size} values, not [B, C, H, W]")
    return values.reshape(shape).astype(np.float32)


def read_image(path) -> np.ndarray:
    """A PNG as float32 [H, W, 3] on 0..1."""
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def latent_delta(render: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """|Δ| per latent pixel [H, W]: the mean over batch and channels."""
    _same_shape(render, baseline, "latent")
    return np.abs(render - baseline).mean(axis=(0, 1))


def image_delta(render: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """|Δ| per pixel [H, W]: the mean over RGB."""
    _same_shape(render, baseline, "image")
    return np.abs(render - baseline).mean(axis=2)


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:   # identical graphs but for strengths: a server-side surprise
        raise ValueError(f"the {what}s differ in shape: {list(a.shape)} vs the baseline's {list(b.shape)}")


def measure(delta: np.ndarray, masks: Mapping[str, np.ndarray], own: str) -> dict:
    """effect, share, and per other region its leak (None when effect is 0)
    and mean (the absolute mean Δ there); `masks` on the grid of `delta`.

    A region with no pixel beyond the feather (it lies inside X's) has no
    leak to speak of: its entry is None, with `pixels` 0."""
    inside = masks[own] >= ONE
    outside = masks[own] <= ZERO
    total = float(delta.sum())
    effect = _mean(delta, inside)
    out = {"effect": effect, "share": float(delta[inside].sum()) / total if total > 0 else None,
           "pixels": int(inside.sum()), "leak": {}, "mean": {}}
    for rid, mask in masks.items():
        if rid == own:
            continue
        where = (mask >= ONE) & outside
        mean = _mean(delta, where)
        out["mean"][rid] = mean
        out["leak"][rid] = mean / effect if mean is not None and effect else None
    return out


def _mean(delta: np.ndarray, where: np.ndarray) -> Optional[float]:
    return float(delta[where].mean()) if where.any() else None


def max_leak(leaks: Dict[str, Optional[float]]) -> Optional[tuple]:
    """(region, leak) of the largest leak, or None when none is known."""
    known = [(r, v) for r, v in leaks.items() if v is not None]
    return max(known, key=lambda rv: rv[1]) if known else None
