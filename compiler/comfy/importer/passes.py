"""The passes after the main sampler: hires (LatentUpscaleBy + KSampler) and
lora_mode refine's repaints (lower/refine.py), read back into their settings."""
from __future__ import annotations

from typing import List, Optional

from compiler.comfy.importer.characters import Draft, box_of
from compiler.comfy.importer.graph import Walk
from compiler.comfy.importer.shape import Repaint, Sampling, Shape
from compiler.ir import regions

__all__ = ["hires_doc", "refine_doc"]

_SHARED = ("name", "scheduler", "cfg", "seed")


def _same_sampler(walk: Walk, main: Sampling, other: Sampling, what: str) -> None:
    for key in _SHARED:
        if other.settings.get(key) != main.settings.get(key):
            walk.problem(other.node, f"its {key} {other.settings.get(key)} differs from the main sampler's "
                                     f"{main.settings.get(key)}: a recipe's {what} shares sampler:")


def _same_model(a, b) -> bool:
    return a.root is not None and b.root is not None and a.root.id == b.root.id and \
        [u.node.id for u in a.loras] == [u.node.id for u in b.loras]


def hires_doc(walk: Walk, shape: Shape) -> dict:
    h, main = shape.hires, shape.main
    s = h.sampling
    _same_sampler(walk, main, s, "hires pass")
    if s.positive != main.positive or s.negative != main.negative:
        walk.problem(s.node, "other prompts than the main sampler's: a recipe's hires pass reuses them")
    if not _same_model(s.model, main.model):
        walk.problem(s.node, "another model than the main sampler's: a recipe's hires pass reuses it")
    elif main.model.sampling is not None and s.model.sampling is None:
        walk.note("the hires pass gets its own ModelSamplingFlux, shifted for the upscaled size")
    return {"scale": float(walk.number(h.upscale, "scale_by", 1.5)), "denoise": float(s.settings["denoise"]),
            "steps": s.settings["steps"], "upscale_method": walk.value(h.upscale, "upscale_method", "nearest-exact")}


def _owner(r: Repaint, drafts: List[Draft]) -> Optional[Draft]:
    text = r.sampling.positive[0].text if r.sampling.positive else None
    if r.mask is not None:
        return next((d for d in drafts if d.entry.mask == r.mask), None)
    return next((d for d in drafts if d.entry.mask is None and text is not None
                 and (d.prompt == text or d.prompt.startswith(text + ", "))), None)


def _repaint(walk: Walk, shape: Shape, r: Repaint, d: Draft, base: str) -> None:
    s = r.sampling
    _same_sampler(walk, shape.main, s, "refine repaint")
    loras = [(u, u.model, u.clip) for u in s.model.loras]
    if base == "hooks" and [(u.file, m, c) for u, m, c in d.loras] != [(u.file, m, c) for u, m, c in loras]:
        walk.problem(r.composite, "its LoRAs are not the ones its region has as hooks in pass 1: a recipe repaints "
                                  "each character with its own")
    d.loras = loras
    if len(s.positive) != 1:
        walk.problem(s.node, "a repaint with other than one prompt: a recipe repaints with the character's own")
        return
    d.bare = s.positive[0].text
    if [u.node.id for u in s.positive[0].clip.loras] != [u.node.id for u, _, _ in loras]:
        walk.problem(s.positive[0].encode, "its text encoder is not the repaint's LoRA chain")
    if shape.main.model.sampling is not None and s.model.sampling is None:
        walk.note(f"{s.node.label}: the repaint gets its own ModelSamplingFlux for its crop's size")


def refine_doc(walk: Walk, shape: Shape, drafts: List[Draft], grid: int, width: int, height: int) -> dict:
    base = "hooks" if any(d.loras for d in drafts) else "none"
    done = []
    for r in shape.repaints:
        d = _owner(r, drafts)
        if d is None or d in (x for x, _ in done):
            walk.problem(r.composite, "a repaint that is not one character's region: a recipe repaints each "
                                      "character with a LoRA once")
            continue
        _repaint(walk, shape, r, d, base)
        done.append((d, r))
    for d in drafts:
        if base == "hooks" and d.loras and d not in (x for x, _ in done):
            walk.problem(d.entry.encode, "a character with hook LoRAs but no repaint: a recipe repaints every "
                                         "character with a LoRA")
    steps = {r.sampling.settings["steps"] for _, r in done}
    denoise = {r.sampling.settings["denoise"] for _, r in done}
    if len(steps) > 1 or len(denoise) > 1:
        walk.problem(done[-1][1].sampling.node, "repaints with different steps or denoise: a recipe's refine: has "
                                                "one of each")
    out = {"base": base, "denoise": float(min(denoise)) if denoise else 0.5}
    out["steps"] = max(steps) if steps else shape.main.settings["steps"]
    margin = _margin(walk, done, grid, width, height)
    if margin is not None:
        out["margin"] = margin
    return out


def _margin(walk: Walk, done, grid: int, width: int, height: int) -> Optional[int]:
    """None when every crop is its region grown by the region's feather
    (refine's default), else the one margin that makes every crop."""
    pairs = [(box_of(d, width, height), d.feather, r) for d, r in done]
    pairs = [(b, f, r) for b, f, r in pairs if b is not None]
    if all(regions.grown_box(b, f, grid, width, height) == r.box for b, f, r in pairs):
        return None
    for m in range(0, max(width, height) + 1):
        if all(regions.grown_box(b, m, grid, width, height) == r.box for b, _, r in pairs):
            return m
    walk.problem(pairs[0][2].composite, "its crop is not the region grown by one margin on the latent grid: a "
                                        "recipe's refine crops every region alike")
    return None
