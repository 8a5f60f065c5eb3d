"""Resolve passes that check what the model family and the lowering need of a
recipe already in full form: the family's model files, refine's crops, the
size of the work. Each collects its problems and raises them once."""
from __future__ import annotations

from compiler.errors import RecipeError, SchemaError
from compiler.ir import regions
from compiler.ir.families import FAMILIES, Family

__all__ = ["check_family", "check_refine", "check_size", "MIN_CROP"]


# -- pass: family requirements ----------------------------------------------------

def check_family(doc: dict, ctx) -> dict:   # ctx: passes.Context
    model = doc["model"]
    family: Family = FAMILIES[model["family"]]
    problems = []
    if not any(all(k in model for k in option) for option in family.needs):
        first = family.needs[0]
        missing = [k for k in first if k not in model]
        alt = " or ".join("`" + "`, `".join(o) + "`" for o in family.needs[1:])
        problems = [RecipeError(f"model family {family.name} needs `{need}`" + (f" (or {alt})" if alt else ""),
                                ctx.loc("model")) for need in missing]
    if "checkpoint" in model and any(k in model for k in ("unet", "text_encoders", "vae")):
        problems.append(RecipeError("name either a checkpoint or separate unet/text_encoders/vae files, not both",
                                    ctx.loc("model", "checkpoint")))
    if model["variant"] not in family.variants:
        names = ", ".join(family.variants)
        problems.append(RecipeError(f"`{model['variant']}` is not a variant of {family.name} (use {names})",
                                    ctx.loc("model", "variant")))
    if problems:
        raise SchemaError(problems)
    return doc


# -- pass: lora_mode refine --------------------------------------------------------

def check_refine(doc: dict, ctx) -> dict:   # ctx: passes.Context
    """What refine's pass 2 needs: some character with a LoRA to repaint, and a
    crop per character that LatentCrop can take (at least 64 px a side)."""
    if doc.get("lora_mode") != "refine":
        return doc
    chars = doc["characters"]
    with_lora = [cid for cid, c in chars.items() if c.get("lora")]
    if not with_lora:
        raise SchemaError([RecipeError("lora_mode refine repaints each character with its own LoRA, but no "
                                       "character has a `lora`", ctx.loc("lora_mode"))])
    family: Family = FAMILIES[doc["model"]["family"]]
    width, height = doc["canvas"]["width"], doc["canvas"]["height"]
    margin = doc["refine"].get("margin")
    problems = []
    for cid in with_lora:
        region = chars[cid]["region"]
        crop = regions.grown_box(ctx.boxes[cid], region["feather"] if margin is None else margin,
                                 family.size_multiple, width, height)
        if crop.w < MIN_CROP or crop.h < MIN_CROP:
            problems.append(RecipeError(f"region is too small to refine: its crop is {crop.w}x{crop.h} px and "
                                        f"LatentCrop needs at least {MIN_CROP}x{MIN_CROP} (enlarge the region, "
                                        f"or raise refine.margin)", ctx.loc("characters", cid, "region")))
    if problems:
        raise SchemaError(problems)
    return doc


MIN_CROP = 64   # LatentCrop's smallest width and height, in pixels (nodes.py)
MAX_PIXELS = 1 << 28   # per queued prompt, all images at their final size: 16384x16384 once


def check_size(doc: dict, ctx) -> dict:   # ctx: passes.Context
    """Each limit alone is sane; their product can ask a server for terapixels."""
    scale = (doc.get("hires") or {}).get("scale", 1)
    w, h, batch = doc["canvas"]["width"], doc["canvas"]["height"], doc["output"]["batch_size"]
    total = w * h * batch * scale * scale
    if total > MAX_PIXELS:
        raise SchemaError([RecipeError(f"{w}x{h} x batch {batch} x hires {scale:g}² is {total:.3g} pixels; "
                                       f"at most {MAX_PIXELS:.3g} per run", ctx.loc("canvas"))])
    return doc
