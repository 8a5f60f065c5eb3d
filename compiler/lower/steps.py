"""The lowering steps of pass 1 and the tail (hires, decode, save); `refine`
lives in refine.py. Each step reads the recipe and the refs earlier steps
left in `Lowering`.

What makes this lowering fast is not optional (REFERENCE.md C1-C4, F):
- cfg 1 never evaluates the negative, so it is a ConditioningZeroOut of an
  encode that exists anyway: no T5 encode (~30 s on a CPU) for nothing.
- Every distinct hook group is a full forward pass per step. When the
  regions cover the canvas the scene text is folded into each character's
  prompt (2 passes, not 3), and each region's positive and negative carry the
  same HookGroup object (SetClipHooks apply_to_conds=False + hooks on the
  Pair node), so the negative adds no group at cfg > 1 either.
- Zero-strength LoRAs emit nothing: an empty HookGroup still costs a pass.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

from compiler.ir import regions
from compiler.ir.families import loader_of
from compiler.ir.graph import GraphBuilder, Link
from compiler.ir.recipe import Character
from compiler.lower.base import Lowering, folds_scene, has_lora, hooks_in_pass1, lora_nodes

__all__ = ["load_models", "global_loras", "model_sampling", "masks", "encode_and_condition", "guidance",
           "latent", "sample", "hires", "decode_and_save"]


# -- steps ----------------------------------------------------------------------

def load_models(low: Lowering) -> None:
    _LOADERS[loader_of(low.family, low.recipe.model)](low)


def _split_loaders(low: Lowering) -> None:
    m, b = low.recipe.model, low.b
    if m.unet_format == "gguf":
        unet = b.add("model.unet", "UnetLoaderGGUF", "model.unet", unet_name=m.unet)
    else:
        unet = b.add("model.unet", "UNETLoader", "model.unet", unet_name=m.unet, weight_dtype=m.weight_dtype)
    t5, clip_l = m.text_encoders
    if any(t.lower().endswith(".gguf") for t in m.text_encoders):
        clip = b.add("model.clip", "DualCLIPLoaderGGUF", "model.text_encoders",
                     clip_name1=t5, clip_name2=clip_l, type=low.family.clip_type)
    else:
        clip = b.add("model.clip", "DualCLIPLoader", "model.text_encoders", clip_name1=t5,
                     clip_name2=clip_l, type=low.family.clip_type, device=m.text_encoder_device)
    vae = b.add("model.vae", "VAELoader", "model.vae", vae_name=m.vae)
    low.model, low.clip, low.vae = unet[0], clip[0], vae[0]


def _checkpoint_loader(low: Lowering) -> None:
    ckpt = low.b.add("model.checkpoint", "CheckpointLoaderSimple", "model.checkpoint",
                     ckpt_name=low.recipe.model.checkpoint)
    low.model, low.clip, low.vae = ckpt[0], ckpt[1], ckpt[2]


_LOADERS = {"split": _split_loaders, "checkpoint": _checkpoint_loader}


def global_loras(low: Lowering) -> None:
    """lora_mode: global merges each LoRA into the model once, at load: zero
    per-step cost, but no regional separation."""
    if low.recipe.lora_mode != "global":
        return
    for c in low.recipe.characters:
        for node_id, origin, lora in lora_nodes(c, low.options.keep_zero_loras):
            node = low.b.add(node_id, "LoraLoader", origin, model=low.model, clip=low.clip, lora_name=lora.file,
                             strength_model=lora.strength_model, strength_clip=lora.strength_clip)
            low.model, low.clip = node[0], node[1]


def model_sampling(low: Lowering) -> None:
    low.unshifted = low.model
    if low.variant.model_sampling:
        w, h = low.recipe.canvas.width, low.recipe.canvas.height
        low.model = low.b.add("model.sampling", "ModelSamplingFlux", "model.variant", model=low.model,
                              max_shift=1.15, base_shift=0.5, width=w, height=h)[0]


def masks(low: Lowering) -> None:
    r, b = low.recipe, low.b
    w, h = r.canvas.width, r.canvas.height
    done: Dict[str, dict] = {}
    for c in r.characters:
        spec = dict(c.region.spec)
        if c.region.kind == "full":
            continue
        if c.region.kind == "mask":
            low.masks[c.id] = _painted_mask(b, c, w, h)
            continue
        twin = next((cid for cid, s in done.items() if regions.complement(s, spec)), None)
        origin = f"characters.{c.id}.region"
        if twin:
            low.masks[c.id] = b.add(f"char.{c.id}.mask", "InvertMask", origin, mask=low.masks[twin])[0]
            continue
        if "canvas.mask" not in b:
            b.add("canvas.mask", "SolidMask", "canvas", value=0.0, width=w, height=h)
        low.masks[c.id] = _feathered_box(b, c, origin, w, h)
        done[c.id] = spec


def _painted_mask(b: GraphBuilder, c: Character, width: int, height: int) -> Link:
    """A painted mask, scaled to exactly the canvas: masks that do not match
    the latent are a classic source of shifted regions."""
    origin = f"characters.{c.id}.region.mask"
    mask = b.add(f"char.{c.id}.mask.load", "LoadImageMask", origin, image=c.region.mask.name,
                 channel=c.region.channel)[0]
    image = b.add(f"char.{c.id}.mask.image", "MaskToImage", origin, mask=mask)[0]
    image = b.add(f"char.{c.id}.mask.scale", "ImageScale", origin, image=image, upscale_method="bilinear",
                  width=width, height=height, crop="disabled")[0]
    return b.add(f"char.{c.id}.mask", "ImageToMask", origin, image=image, channel="red")[0]


def _feathered_box(b: GraphBuilder, c: Character, origin: str, width: int, height: int) -> Link:
    """A 1-inside mask for the box, widened by half the feather across each
    interior edge and ramped over the full feather there, so two neighbours'
    ramps cross at the seam and sum to 1."""
    area, amounts = regions.feathered_extent(c.region.box, c.region.feather, width, height)
    mask = b.add(f"char.{c.id}.mask.solid", "SolidMask", origin, value=1.0, width=area.w, height=area.h)[0]
    if any(amounts.values()):
        mask = b.add(f"char.{c.id}.mask.feather", "FeatherMask", origin, mask=mask, **amounts)[0]
    return b.add(f"char.{c.id}.mask", "MaskComposite", origin, destination=Link("canvas.mask", 0),
                 source=mask, x=area.x, y=area.y, operation="add")[0]


def encode_and_condition(low: Lowering) -> None:
    r, b = low.recipe, low.b
    fold = folds_scene(r)
    base = None
    if not r.characters or (r.scene and not fold):
        base = b.add("scene.text", "CLIPTextEncode", "scene", text=r.scene, clip=low.clip)[0]
    texts = {c.id: _encode_character(low, c, fold) for c in r.characters}
    low.negative = _negative(low, base if base is not None else next(iter(texts.values()), None))
    low.plain_negative = low.negative
    low.positive = base
    negative = low.negative
    for c in r.characters:
        hooks = Link(lora_nodes(c, low.options.keep_zero_loras)[-1][0], 0) if _hooked(low, c) else None
        props = dict(positive_NEW=texts[c.id], negative_NEW=low.negative, strength=1.0,
                     set_cond_area=r.cond_area, mask=low.masks.get(c.id), hooks=hooks)
        if low.positive is None:
            node = b.add(f"char.{c.id}.cond", "PairConditioningSetProperties", f"characters.{c.id}", **props)
        else:
            node = b.add(f"char.{c.id}.cond", "PairConditioningSetPropertiesAndCombine", f"characters.{c.id}",
                         positive=low.positive, negative=negative, **props)
        low.positive, negative = node[0], node[1]
    low.negative = negative


def _hooked(low: Lowering, c: Character) -> bool:
    return hooks_in_pass1(low.recipe) and has_lora(c, low.options.keep_zero_loras)


def _encode_character(low: Lowering, c: Character, fold: bool) -> Link:
    r, b = low.recipe, low.b
    clip = low.clip
    if _hooked(low, c):
        hook = None
        for node_id, origin, lora in lora_nodes(c, low.options.keep_zero_loras):   # a stack chains through prev_hooks: one group
            hook = b.add(node_id, "CreateHookLora", origin, lora_name=lora.file, prev_hooks=hook[0] if hook else None,
                         strength_model=lora.strength_model, strength_clip=lora.strength_clip)
        if low.options.keep_zero_loras or any(lora.strength_clip != 0 for lora in c.active_loras):
            # apply_to_conds=False: the LoRA's text-encoder part shapes this
            # encode; the model part is attached by the Pair node, to the
            # positive *and* negative, as one HookGroup object.
            clip = b.add(f"char.{c.id}.clip", "SetClipHooks", f"characters.{c.id}.strength.clip", clip=clip,
                         apply_to_conds=False, schedule_clip=False, hooks=hook[0])[0]
    text = f"{c.prompt}, {r.scene}" if fold and r.scene else c.prompt
    return b.add(f"char.{c.id}.text", "CLIPTextEncode", f"characters.{c.id}.prompt", text=text, clip=clip)[0]


def _negative(low: Lowering, existing: Optional[Link]) -> Link:
    r = low.recipe
    if math.isclose(r.sampler.cfg, 1.0):
        # Never evaluated at cfg 1 (samplers.py:371); zero an encode we have.
        return low.b.add("negative", "ConditioningZeroOut", "sampler.cfg", conditioning=existing)[0]
    return low.b.add("negative", "CLIPTextEncode", "negative", text=r.negative, clip=low.clip)[0]


def guidance(low: Lowering) -> None:
    if low.variant.flux_guidance and low.recipe.guidance is not None:
        low.positive = low.b.add("guidance", "FluxGuidance", "guidance", conditioning=low.positive,
                                 guidance=low.recipe.guidance)[0]


def latent(low: Lowering) -> None:
    r, b = low.recipe, low.b
    if r.image is None:
        low.samples = b.add("latent", low.family.latent_node, "canvas", width=r.canvas.width,
                            height=r.canvas.height, batch_size=r.output.batch_size)[0]
        return
    pixels = b.add("image.load", "LoadImage", "image.file", image=r.image.name)[0]
    pixels = b.add("image.scale", "ImageScale", "image.resize", image=pixels, upscale_method="lanczos",
                   width=r.canvas.width, height=r.canvas.height,
                   crop="center" if r.image_resize == "crop" else "disabled")[0]
    low.samples = b.add("latent", "VAEEncode", "image", pixels=pixels, vae=low.vae)[0]
    if r.output.batch_size > 1:
        low.samples = b.add("latent.batch", "RepeatLatentBatch", "output.batch_size", samples=low.samples,
                            amount=r.output.batch_size)[0]


def sample(low: Lowering) -> None:
    s = low.recipe.sampler
    low.samples = low.b.add("sampler", "KSampler", "sampler", model=low.model, seed=s.seed, steps=s.steps,
                            cfg=s.cfg, sampler_name=s.name, scheduler=s.scheduler, positive=low.positive,
                            negative=low.negative, latent_image=low.samples, denoise=s.denoise)[0]


def hires(low: Lowering) -> None:
    h, r, b = low.recipe.hires, low.recipe, low.b
    if h is None:
        return
    up = b.add("hires.upscale", "LatentUpscaleBy", "hires.scale", samples=low.samples,
               upscale_method=h.upscale_method, scale_by=h.scale)[0]
    model = low.model
    if low.variant.model_sampling:
        w, hh = (16 * round(v * h.scale / 16) for v in (r.canvas.width, r.canvas.height))
        model = b.add("hires.sampling", "ModelSamplingFlux", "hires.scale", model=low.unshifted,
                      max_shift=1.15, base_shift=0.5, width=w, height=hh)[0]
    s = r.sampler
    low.samples = b.add("hires.sampler", "KSampler", "hires", model=model, seed=s.seed, steps=h.steps,
                        cfg=s.cfg, sampler_name=s.name, scheduler=s.scheduler, positive=low.positive,
                        negative=low.negative, latent_image=up, denoise=h.denoise)[0]


def decode_and_save(low: Lowering) -> None:
    if low.options.save_latent:
        low.b.add("probe.latent", "SaveLatent", "output.prefix", samples=low.samples,
                  filename_prefix=f"latents/{low.recipe.output.prefix}")
    image = low.b.add("decode", "VAEDecode", "model.vae", samples=low.samples, vae=low.vae)[0]
    low.b.add("save", "SaveImage", "output.prefix", images=image, filename_prefix=low.recipe.output.prefix)

