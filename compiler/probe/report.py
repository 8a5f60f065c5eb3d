"""From the renders to numbers: every character's |Δ| maps and measurements,
the stdout table, and the panels' titles."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from compiler.errors import Location, LowerError, ProtocolError
from compiler.probe.masks import UnknownMaskNode, character_masks, resize
from compiler.probe.metrics import image_delta, latent_delta, max_leak, measure, read_image, read_latent
from compiler.probe.renders import Rendered

__all__ = ["Analysis", "analyse", "table", "title"]


@dataclass
class Analysis:
    results: Dict[str, dict]                 # character id -> {folder, loras, latent: {...}, image: {...}}
    deltas: Dict[str, tuple]                 # character id -> (latent |Δ| [h, w], image |Δ| [H, W])
    masks: Dict[str, np.ndarray]             # character id -> mask at canvas size
    baseline_image: np.ndarray               # [H, W, 3] on 0..1


def _latent(r: Rendered) -> np.ndarray:
    path = r.files("latent")[0]
    try:
        return read_latent(path.read_bytes())
    except ValueError as exc:
        raise ProtocolError(f"{path}: not a latent file SaveLatent writes: {exc}") from None


def _images(r: Rendered) -> List[np.ndarray]:
    return [read_image(p) for p in r.files("image")]


def _image_delta(render: Rendered, baseline: List[np.ndarray]) -> np.ndarray:
    """|Δ| per pixel, averaged over the batch's images, in order."""
    images = _images(render)
    if len(images) != len(baseline):
        raise ProtocolError(f"the {render.render.name} render saved {len(images)} images, "
                            f"the baseline {len(baseline)}")
    try:
        return np.mean([image_delta(a, b) for a, b in zip(images, baseline)], axis=0)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


def analyse(done: Sequence[Rendered]) -> Analysis:
    """done[0] is the baseline; every other render is one character's."""
    base = done[0]
    try:
        masks = character_masks(base.recipe, base.graph)
    except UnknownMaskNode as exc:   # the lowering grew a mask node masks.py lacks
        raise LowerError(f"the probe cannot compute a region's mask: {exc}", Location(base.recipe.source)) from None
    b_latent, b_images = _latent(base), _images(base)
    on_latent = {k: resize(m, *b_latent.shape[2:]) for k, m in masks.items()}
    on_image = {k: resize(m, *b_images[0].shape[:2]) for k, m in masks.items()}
    results, deltas = {}, {}
    for r in done[1:]:
        cid = r.render.character
        try:
            ld = latent_delta(_latent(r), b_latent)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        idelta = _image_delta(r, b_images)
        char = next(c for c in r.recipe.characters if c.id == cid)
        results[cid] = {"folder": r.folder.name,
                        "loras": [{"file": lora.file, "strength_model": lora.strength_model,
                                   "strength_clip": lora.strength_clip} for lora in char.loras],
                        "latent": measure(ld, on_latent, cid), "image": measure(idelta, on_image, cid)}
        deltas[cid] = (ld, idelta)
    return Analysis(results, deltas, masks, b_images[0])


def _num(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:.3g}"


def _pct(v: Optional[float]) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _leaks(m: dict) -> str:
    if not m["leak"]:
        return "(no other region)"
    if not m["effect"]:
        return "n/a: no effect"
    return ", ".join(f"{rid} {_num(v)}" for rid, v in m["leak"].items())


def table(results: Dict[str, dict], mode: str) -> str:
    """One line per character: latent effect, leak per region, share; image leak."""
    head = ("character", "mode", "latent effect", "latent leak", "share", "image effect", "image leak")
    rows = [head]
    for cid, r in results.items():
        lat, img = r["latent"], r["image"]
        rows.append((cid, mode, _num(lat["effect"]), _leaks(lat), _pct(lat["share"]), _num(img["effect"]),
                     _leaks(img)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def title(cid: str, mode: str, r: dict) -> str:
    """A panel's title: character, effect, worst leak, on the latent."""
    lat = r["latent"]
    worst = max_leak(lat["leak"])
    leak = f"max leak {_num(worst[1])} ({worst[0]})" if worst else "max leak —"
    return f"{cid} ({mode}): latent effect {_num(lat['effect'])}, {leak}, share {_pct(lat['share'])}"
