"""probe.png: where each character's LoRA changed the picture.

One panel per character, stacked: a title line (character, effect, worst
leak), then two tiles over the dimmed baseline image, |Δ| of the latent
(what the sampler made; nearest-neighbour, so each latent pixel stays a
visible cell) and |Δ| of the image (what the VAE made of it). Each tile is
normalised to its own maximum (black → red → yellow → white), so the shape
of the change shows even where it is tiny; the numbers are in the title.
Every region's outline is drawn and labelled on both tiles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from compiler.ir.recipe import Recipe

__all__ = ["Panel", "hot", "layout", "render_sheet", "MIN_TILE", "PAD", "TITLE_H"]

MIN_TILE = 256     # tiles are scaled up by a whole factor until the longer side reaches this
PAD, TITLE_H = 8, 30
PALETTE = ((0, 200, 255), (90, 255, 90), (255, 90, 255), (255, 255, 255),
           (120, 140, 255), (0, 255, 200), (255, 170, 60), (200, 200, 120))


@dataclass(frozen=True)
class Panel:
    title: str                  # "a (hooks): effect 0.0123, max leak 0.002 (b)"
    latent_delta: np.ndarray    # [h, w] on the latent grid
    image_delta: np.ndarray     # [H, W] at image size


def hot(t: np.ndarray) -> np.ndarray:
    """0..1 -> RGB uint8, black → red → yellow → white."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    rgb = np.clip(np.concatenate([3 * t, 3 * t - 1, 3 * t - 2], axis=-1), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def layout(width: int, height: int, panels: int) -> Tuple[int, int, int, Tuple[int, int]]:
    """(sheet width, sheet height, panel height, tile size) for images of width x height."""
    scale = max(1, -(-MIN_TILE // max(width, height)))
    tile = (width * scale, height * scale)
    panel_h = TITLE_H + tile[1] + PAD
    return 2 * tile[0] + 3 * PAD, PAD + panels * panel_h, panel_h, tile


def _tile(delta: np.ndarray, baseline: np.ndarray, size: Tuple[int, int]):
    from PIL import Image
    peak = float(delta.max()) if delta.size else 0.0
    norm = delta / peak if peak > 0 else np.zeros_like(delta)
    heat = Image.fromarray(hot(norm)).resize(size, Image.NEAREST)
    alpha = Image.fromarray((np.sqrt(norm) * 255).astype(np.uint8)).resize(size, Image.NEAREST)
    gray = (baseline.mean(axis=2) * 0.45 * 255).astype(np.uint8)
    base = Image.fromarray(gray).convert("RGB").resize(size, Image.BILINEAR)
    return Image.composite(heat, base, alpha)   # alpha √t: faint change still shows


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of mask >= 0.5 with a neighbour below it: a painted region's edge."""
    inside = mask >= 0.5
    pad = np.pad(inside, 1, constant_values=False)
    neighbours = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return inside & ~neighbours


def _regions(tile, recipe: Recipe, masks: Dict[str, np.ndarray]) -> None:
    """Each region's box (or a painted mask's edge), labelled with its id."""
    from PIL import Image, ImageDraw
    from compiler.probe.masks import resize
    draw = ImageDraw.Draw(tile)
    sx, sy = tile.width / recipe.canvas.width, tile.height / recipe.canvas.height
    for i, c in enumerate(recipe.characters):
        color = PALETTE[i % len(PALETTE)]
        if c.region.kind == "mask":
            edge = _outline(resize(masks[c.id], tile.height, tile.width))
            tile.paste(Image.new("RGB", tile.size, color), (0, 0), Image.fromarray(edge.astype(np.uint8) * 255))
            x, y = 2, 2 + 12 * i
        else:
            b = c.region.box
            x0, y0 = round(b.x * sx), round(b.y * sy)
            draw.rectangle([x0, y0, round(b.right * sx) - 1, round(b.bottom * sy) - 1], outline=color)
            x, y = x0 + 3, y0 + 3
        draw.rectangle([x - 1, y - 1, x + 6 * len(c.id) + 1, y + 11], fill=(0, 0, 0))
        draw.text((x, y), c.id, fill=color)


def render_sheet(panels: Sequence[Panel], baseline: np.ndarray, recipe: Recipe,
                 masks: Dict[str, np.ndarray]):
    """The whole sheet, and where each panel and its two tiles are in it,
    as [x, y, w, h] (for probe.json, and tests)."""
    from PIL import Image, ImageDraw
    height, width = baseline.shape[:2]
    sheet_w, sheet_h, panel_h, tile = layout(width, height, len(panels))
    sheet = Image.new("RGB", (sheet_w, sheet_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    boxes: List[dict] = []
    for k, p in enumerate(panels):
        top = PAD + k * panel_h
        draw.text((PAD, top + 2), p.title, fill=(235, 235, 235))
        captions = (f"latent |d|, max {float(p.latent_delta.max()):.3g}",
                    f"image |d|, max {float(p.image_delta.max()):.3g}")
        box = {"box": [0, top, sheet_w, TITLE_H + tile[1]]}
        for j, (name, delta, caption) in enumerate(zip(("latent", "image"), (p.latent_delta, p.image_delta),
                                                       captions)):
            x = PAD + j * (tile[0] + PAD)
            draw.text((x, top + 16), caption, fill=(170, 170, 170))
            t = _tile(delta, baseline, tile)
            _regions(t, recipe, masks)
            sheet.paste(t, (x, top + TITLE_H))
            box[f"{name}_tile"] = [x, top + TITLE_H, tile[0], tile[1]]
        boxes.append(box)
    return sheet, boxes
