"""`lora_mode: refine`, pass 2: repaint each character inside its own box with
only its own LoRA, then paste the result back through its region's mask.

Per character with a LoRA, chained one after another (node ids char.<id>.refine.*):

    LatentCrop(box) -> KSampler(LoraLoader(model), its prompt, denoise) ->
    LatentCompositeMasked(destination=the picture so far, same x/y, mask=CropMask(its mask))

Why this separates by construction: LatentCompositeMasked copies the
destination wherever the mask is 0 (comfy_extras/nodes_mask.py `composite`),
so outside the character's box, or where its mask is 0, its LoRA cannot
change a single latent value. The LoRA is merged once by LoraLoader (no hook
swaps per step), which is also the path ComfyUI-GGUF supports.

The box is computed here, on the latent grid, clamped to the canvas: LatentCrop
silently clamps x and y to W-64/H-64 (nodes.py), so the compiler never relies on
that and passes the same x/y to the composite with resize_source false.
"""
from __future__ import annotations

from compiler.ir import regions
from compiler.ir.graph import Link
from compiler.ir.recipe import Box, Character, Recipe
from compiler.lower.base import Lowering, has_lora, lora_nodes

__all__ = ["refine", "crop_box", "refine_owner"]

_MARK = ".refine."   # pass 2's node ids: char.<id>.refine.<part>


def refine_owner(node_id: str):
    """`char.<id>` for a node of refine's pass 2 (whose own model carries that
    character's LoRA), None for any other node."""
    return node_id.split(_MARK, 1)[0] if _MARK in node_id else None


def crop_box(recipe: Recipe, c: Character, grid: int) -> Box:
    """The character's region plus the margin (default: its feather), snapped
    outwards to the latent grid and clamped to the canvas."""
    margin = recipe.refine.margin if recipe.refine and recipe.refine.margin is not None else c.region.feather
    return regions.grown_box(c.region.box, margin, grid, recipe.canvas.width, recipe.canvas.height)


def refine(low: Lowering) -> None:
    if low.recipe.lora_mode != "refine":
        return
    for c in low.recipe.characters:
        if has_lora(c, low.options.keep_zero_loras):
            low.samples = _repaint(low, c, crop_box(low.recipe, c, low.family.size_multiple))


def _repaint(low: Lowering, c: Character, box: Box) -> Link:
    r, b, s = low.recipe, low.b, low.recipe.sampler
    at = dict(x=box.x, y=box.y)
    pre, origin = f"char.{c.id}{_MARK[:-1]}", f"characters.{c.id}"
    crop = b.add(f"{pre}.crop", "LatentCrop", "refine", samples=low.samples, width=box.w, height=box.h, **at)[0]
    model, clip = _lora_model(low, c)
    if low.variant.model_sampling:   # the shift follows the token count, i.e. the crop's size
        model = b.add(f"{pre}.sampling", "ModelSamplingFlux", "model.variant", model=model,
                      max_shift=1.15, base_shift=0.5, width=box.w, height=box.h)[0]
    positive = b.add(f"{pre}.text", "CLIPTextEncode", f"{origin}.prompt", text=c.prompt, clip=clip)[0]
    if low.variant.flux_guidance and r.guidance is not None:
        positive = b.add(f"{pre}.guidance", "FluxGuidance", "guidance", conditioning=positive,
                         guidance=r.guidance)[0]
    repainted = b.add(f"{pre}.sampler", "KSampler", "refine", model=model, seed=s.seed, steps=r.refine.steps, cfg=s.cfg,
                      sampler_name=s.name, scheduler=s.scheduler, positive=positive,
                      negative=low.plain_negative, latent_image=crop, denoise=r.refine.denoise)[0]
    mask = low.masks.get(c.id)
    if mask is not None:
        mask = b.add(f"{pre}.mask", "CropMask", f"{origin}.region", mask=mask, width=box.w, height=box.h, **at)[0]
    return b.add(f"{pre}.composite", "LatentCompositeMasked", f"{origin}.region", destination=low.samples,
                 source=repainted, resize_source=False, mask=mask, **at)[0]


def _lora_model(low: Lowering, c: Character):
    """The character's LoRA stack merged into the unshifted model and the base
    CLIP, once, by LoraLoader."""
    model, clip = low.unshifted, low.clip
    for node_id, origin, lora in lora_nodes(c, low.options.keep_zero_loras):
        node_id = node_id.replace(f"char.{c.id}.lora", f"char.{c.id}{_MARK}lora", 1)
        node = low.b.add(node_id, "LoraLoader", origin, model=model, clip=clip, lora_name=lora.file,
                         strength_model=lora.strength_model, strength_clip=lora.strength_clip)
        model, clip = node[0], node[1]
    return model, clip
