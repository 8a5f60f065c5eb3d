"""Stage 4, lower: `Recipe` -> `Graph` of ComfyUI core nodes.

    LOWER_STEPS = (load_models, global_loras, model_sampling, masks, encode_and_condition,
                   guidance, latent, sample, refine, hires, decode_and_save)

Each step reads the recipe and the refs earlier steps left in `Lowering`
(base.py). Pass 1 and the tail are in steps.py; `lora_mode: refine`'s pass 2
is in refine.py. Imports only ir/ and errors.
"""
from __future__ import annotations

from compiler.ir.families import family_of, variant_of
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe
from compiler.lower.base import (PROBE, LowerError, LowerOptions, Lowering, folds_scene, gguf_hook_conflict,
                                 has_lora, hooks_in_pass1, lora_nodes, uses_hooks)
from compiler.lower.refine import crop_box, refine, refine_owner
from compiler.lower.steps import (decode_and_save, encode_and_condition, global_loras, guidance, hires, latent,
                                  load_models, masks, model_sampling, sample)

__all__ = ["lower", "LOWER_STEPS", "LowerOptions", "PROBE", "folds_scene", "uses_hooks", "hooks_in_pass1",
           "gguf_hook_conflict", "has_lora", "lora_nodes", "crop_box", "refine_owner"]

LOWER_STEPS = (load_models, global_loras, model_sampling, masks, encode_and_condition,
               guidance, latent, sample, refine, hires, decode_and_save)


def lower(recipe: Recipe, options: LowerOptions = LowerOptions()) -> Graph:
    conflict = gguf_hook_conflict(recipe)
    if conflict:
        raise LowerError(*conflict)
    family = family_of(recipe.model.family)
    low = Lowering(recipe, family, variant_of(family, recipe.model.variant), options)
    for step in LOWER_STEPS:
        step(low)
    return low.b.build()
