"""What every lowering step shares: the state it builds (`Lowering`), the
options a measurement asks for, and the predicates the advisor reads too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from compiler.errors import LowerError
from compiler.ir import regions
from compiler.ir.families import Family, Variant
from compiler.ir.graph import GraphBuilder, Link
from compiler.ir.recipe import Character, Recipe

__all__ = ["Lowering", "LowerOptions", "PROBE", "has_lora", "lora_nodes", "uses_hooks", "hooks_in_pass1",
           "gguf_hook_conflict", "folds_scene", "LowerError"]


@dataclass(frozen=True)
class LowerOptions:
    """What a measurement needs that a normal run does not.

    keep_zero_loras: emit every LoRA node, even at strength 0, so a render
      with the LoRAs switched off has exactly the structure of one with them
      on (the leak probe's baseline). A normal run drops them: an empty
      HookGroup still costs a model pass per step.
    save_latent: also save the final latent (what VAEDecode receives) with
      SaveLatent as node `probe.latent`, so separation can be measured before
      the VAE decoder's global attention smears it.
    """
    keep_zero_loras: bool = False
    save_latent: bool = False


PROBE = LowerOptions(keep_zero_loras=True, save_latent=True)


@dataclass
class Lowering:
    recipe: Recipe
    family: Family
    variant: Variant
    options: LowerOptions = LowerOptions()
    b: GraphBuilder = field(default_factory=GraphBuilder)
    model: Optional[Link] = None
    unshifted: Optional[Link] = None   # the model before ModelSamplingFlux, for the hires pass's own shift
    clip: Optional[Link] = None
    vae: Optional[Link] = None
    masks: Dict[str, Link] = field(default_factory=dict)
    positive: Optional[Link] = None
    negative: Optional[Link] = None
    samples: Optional[Link] = None
    plain_negative: Optional[Link] = None   # the negative before any region or hook: refine's pass 2 reuses it


def has_lora(c: Character, keep_zero: bool = False) -> bool:
    return bool(c.loras if keep_zero else c.active_loras)


def lora_nodes(c: Character, keep_zero: bool = False):
    """(node id, recipe key, Lora) for each active LoRA of a character's stack
    (each LoRA at all with keep_zero)."""
    keyed = len(c.loras) > 1
    out, n = [], 0
    for i, lora in enumerate(c.loras):
        if lora.active or keep_zero:
            n += 1
            node_id = f"char.{c.id}.lora" + (f".{n}" if n > 1 else "")
            out.append((node_id, f"characters.{c.id}.lora" + (f"[{i}]" if keyed else ""), lora))
    return out


def hooks_in_pass1(recipe: Recipe) -> bool:
    """Pass 1 (the whole canvas) carries the LoRAs as hooks: `lora_mode: hooks`,
    or `refine` on a hooks base."""
    return recipe.lora_mode == "hooks" or (recipe.lora_mode == "refine" and recipe.refine is not None
                                           and recipe.refine.base == "hooks")


def uses_hooks(recipe: Recipe) -> bool:
    return hooks_in_pass1(recipe) and any(has_lora(c) for c in recipe.characters)


def gguf_hook_conflict(recipe: Recipe):
    """(message, location) when a GGUF model would meet hook LoRAs, else None.
    On a real server this dies at the sampler with "'Linear' object has no
    attribute 'temp'" after every encode has run (transcripts/08)."""
    if not uses_hooks(recipe):
        return None
    # refine on a hooks base: the way out is the base, not the mode
    way_out = "set refine.base: none" if recipe.lora_mode == "refine" else \
        "set lora_mode: refine (per-character LoRAs through LoraLoader, which GGUF supports)"
    gguf = [("model.unet", recipe.model.unet_format == "gguf",
             f"{way_out}, or use a .safetensors UNet (fp8 via weight_dtype)"),
            ("model.text_encoders", any(t.lower().endswith(".gguf") for t in recipe.model.text_encoders),
             f"{way_out}, or use .safetensors text encoders (t5xxl_fp8_e4m3fn_scaled)")]
    for key, is_gguf, fix in gguf:
        if is_gguf:
            return ("a GGUF model cannot be used with hook LoRAs: ComfyUI fails at the sampler with "
                    "\"'Linear' object has no attribute 'temp'\"", recipe.locate(key), fix)
    return None


def folds_scene(recipe: Recipe) -> bool:
    """Fold the scene into each character's prompt when the regions cover the
    canvas: the scene then adds no unhooked cond, i.e. no extra pass."""
    chars = recipe.characters
    if any(c.region.kind == "mask" for c in chars):   # a painted shape's coverage is unknown
        return False
    return bool(chars) and regions.covers([c.region.box for c in chars], recipe.canvas.width, recipe.canvas.height)
