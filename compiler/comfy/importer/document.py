"""The recipe document from the shape: model, canvas, LoRA mode, characters,
prompts, sampler, hires, refine and output."""
from __future__ import annotations

import math
import re
from typing import List, Optional

from compiler.comfy.importer.characters import (Draft, assign_global, box_of, common_scene, hook_stack, name_all,
                                                place, region_values, server_name, shorthand, split_entries)
from compiler.comfy.importer.graph import Problem, Walk
from compiler.comfy.importer.passes import hires_doc, refine_doc
from compiler.comfy.importer.shape import Shape
from compiler.ir import regions
from compiler.ir.families import family_of

__all__ = ["build_document"]

_XL = re.compile(r"xl|pony|illustrious|noob|animagine", re.IGNORECASE)


def build_document(walk: Walk, shape: Shape, name: str) -> dict:
    model = _model(walk, shape)
    family = model["family"]
    width, height = shape.latent.get("width") or 1024, shape.latent.get("height") or 1024
    doc = {"version": 1, "name": name, "model": model, "canvas": {"width": width, "height": height}}
    if shape.latent.get("image"):
        doc["image"] = {"file": server_name(walk, shape.latent["image"]), "resize": shape.latent["resize"]}
    _flux_details(walk, shape, family, width, height)
    drafts, scene = _characters(walk, shape, width, height)
    mode = _lora_mode(walk, shape, drafts)
    if mode != "hooks":
        doc["lora_mode"] = mode
    if mode == "refine":
        doc["refine"] = refine_doc(walk, shape, drafts, family_of(family).size_multiple, width, height)
        scene = _scene_from_repaints(drafts, scene)
    feather = region_values(drafts, width, height)
    if feather is not None:
        doc["canvas"]["feather"] = feather
    scene = _prompts(walk, drafts, scene, width, height)
    name_all(drafts)
    if _area(walk, drafts) == "mask bounds":
        doc["regions"] = {"area": "mask-bounds"}
    if drafts:
        doc["characters"] = {d.id: _character(d) for d in drafts}
    doc["scene"] = scene or ""
    _sampler_and_negative(walk, shape, doc)
    _guidance(walk, shape, doc, family)
    if shape.hires:
        doc["hires"] = hires_doc(walk, shape)
    doc["output"] = {"prefix": str(walk.value(shape.output, "filename_prefix", "ComfyUI"))}
    if (shape.latent.get("batch_size") or 1) != 1:
        doc["output"]["batch_size"] = shape.latent["batch_size"]
    return doc


# -- model ---------------------------------------------------------------------------

def _model(walk: Walk, shape: Shape) -> dict:
    root = shape.main.model.root
    clips = {e.clip.root.id: e.clip.root for e in shape.main.positive + shape.main.negative if e.clip.root}
    vae = walk.take(shape.vae, ("VAELoader", "CheckpointLoaderSimple"), "the VAE should come from VAELoader or the checkpoint here")
    flux = bool(shape.main.model.sampling) or any(e.guidance is not None for e in shape.main.positive) or \
        shape.latent.get("node") is not None and shape.latent["node"].class_type == "EmptySD3LatentImage"
    if root is not None and root.class_type == "CheckpointLoaderSimple":
        return _checkpoint(walk, shape, root, clips, vae, flux)
    model = {"family": "flux", "variant": _variant(shape, str(walk.value(root, "unet_name", "")) if root else "")}
    if root is not None:
        model["unet"] = walk.value(root, "unet_name")
        if walk.value(root, "weight_dtype", "default") != "default":
            model["weight_dtype"] = walk.value(root, "weight_dtype")
    clip = next(iter(clips.values()), None)
    if len(clips) > 1:
        for other in list(clips.values())[1:]:
            walk.problem(other, "a second text encoder loader: a recipe loads one")
    if clip is not None and clip.class_type in ("DualCLIPLoader", "DualCLIPLoaderGGUF"):
        if walk.value(clip, "type") != "flux":
            walk.problem(clip, f"DualCLIPLoader type {walk.value(clip, 'type')}: a recipe's split loaders are Flux's")
        model["text_encoders"] = [walk.value(clip, "clip_name1"), walk.value(clip, "clip_name2")]
        if walk.value(clip, "device", "default") != "default":
            model["text_encoder_device"] = walk.value(clip, "device")
    elif clip is not None:
        walk.problem(clip, "a checkpoint's text encoder beside a separate UNet: a recipe loads both from one or "
                           "neither")
    if vae is not None and vae.class_type == "VAELoader":
        model["vae"] = walk.value(vae, "vae_name")
    elif vae is not None:
        walk.problem(vae, "a checkpoint's VAE beside a separate UNet: a recipe loads both from one or neither")
    return model


def _checkpoint(walk, shape, root, clips, vae, flux) -> dict:
    name = str(walk.value(root, "ckpt_name", ""))
    for node in list(clips.values()) + [vae]:
        if node is not None and node.id != root.id:
            walk.problem(node, "a separate loader beside a checkpoint: a recipe takes the checkpoint's own "
                               "text encoder and VAE")
    if flux:
        return {"family": "flux", "variant": _variant(shape, name), "checkpoint": name}
    area = (shape.latent.get("width") or 0) * (shape.latent.get("height") or 0)
    family = "sdxl" if _XL.search(name) or area >= 768 * 1024 else "sd15"
    walk.note(f"model family {family}, guessed from the checkpoint's name and the canvas (sd15 and sdxl compile "
              "alike; set model.family if it is the other)")
    return {"family": family, "checkpoint": name}


def _variant(shape: Shape, name: str) -> str:
    if not shape.main.model.sampling and all(e.guidance is None for e in shape.main.positive):
        return "schnell"
    return "srpo" if "srpo" in name.lower() else "dev"


def _flux_details(walk: Walk, shape: Shape, family: str, width: int, height: int) -> None:
    latent, sampling = shape.latent.get("node"), shape.main.model.sampling
    if family == "flux" and latent is not None and latent.class_type == "EmptyLatentImage":
        walk.note("EmptyLatentImage becomes EmptySD3LatentImage, Flux's own (ComfyUI converts an empty latent "
                  "to the model's channels either way)")
    if family == "flux" and sampling is None and shape.main.settings and _variant(shape, "") != "schnell":
        walk.note("ModelSamplingFlux is added: Flux dev shifts for the canvas size (ComfyUI's built-in shift is "
                  "the one for 1024x1024)")
    if sampling is not None:
        if (walk.value(sampling, "max_shift"), walk.value(sampling, "base_shift")) != (1.15, 0.5):
            walk.problem(sampling, "shifts other than max 1.15, base 0.5: a recipe uses Flux dev's own")
        elif (walk.value(sampling, "width"), walk.value(sampling, "height")) != (width, height):
            walk.note(f"ModelSamplingFlux is set for the canvas, {width}x{height}, not "
                      f"{walk.value(sampling, 'width')}x{walk.value(sampling, 'height')}")


# -- characters and prompts ------------------------------------------------------------

def _characters(walk: Walk, shape: Shape, width: int, height: int):
    chars, scenes = split_entries(shape.main.positive)
    for extra in scenes[1:]:
        walk.problem(extra.encode, "a second prompt over the whole canvas: a recipe has one scene")
    scene = scenes[0].text if scenes else None
    if not chars and shape.main.model.loras and scene:
        walk.note("the one prompt and its LoRAs become one character over the whole canvas")
        chars, scene = scenes[:1], None
    drafts = [Draft(e) for e in chars]
    for d in drafts:
        d.loras = hook_stack(walk, d.entry)
        d.prompt = d.entry.text
        place(walk, d, width, height)
        for use, _, _ in d.loras:
            if not (use.model or use.clip):
                walk.note(f"{use.node.label}: strength 0, so the compiler leaves it out")
    for i, d in enumerate(drafts):
        if d.twin is not None and not any(o.spec == d.twin and o.feather == d.feather for o in drafts[:i]):
            walk.note(f"{d.entry.encode.label}: its region is the other half of a split; the compiler makes it "
                      "InvertMask of the first half's mask only when that half is an earlier character's")
    return drafts, scene


def _area(walk: Walk, drafts: List[Draft]) -> str:
    """set_cond_area, one for every region; strength 1 everywhere."""
    for d in drafts:
        if d.entry.strength != 1.0:
            walk.problem(d.entry.props or d.entry.encode, f"region strength {d.entry.strength:g}: a recipe's "
                                                          "regions have strength 1")
    masked = [d for d in drafts if d.entry.mask is not None]
    for d in masked[1:]:
        if d.entry.area != masked[0].entry.area:
            walk.problem(d.entry.props or d.entry.encode, f"set_cond_area {d.entry.area} where another region "
                                                          f"has {masked[0].entry.area}: a recipe sets one for all")
    return masked[0].entry.area if masked else "default"


def _lora_mode(walk: Walk, shape: Shape, drafts: List[Draft]) -> str:
    chain = shape.main.model.loras
    hooked = {u.file: u for d in drafts for u, _, _ in d.loras}
    for use in chain:
        if use.file in hooked:
            walk.fatal.append(Problem(use.node.id, use.node.class_type,
                                      f"`{use.file}` is also hooked by {hooked[use.file].node.label}, so its "
                                      "effect doubles inside that region; a recipe applies each LoRA one way: as "
                                      "hooks, or merged with lora_mode: global", "LoRA injected twice"))
    if shape.repaints:
        for use in chain:
            walk.problem(use.node, "a LoRA merged into the model before the refine passes: a recipe's refine "
                                   "composes without LoRAs, or with hooks (refine.base)")
        return "refine"
    if hooked and chain:
        for use in chain:
            if use.file not in hooked:
                walk.problem(use.node, "a LoraLoader beside hook LoRAs: a recipe uses one lora_mode")
        return "hooks"
    if chain and not drafts:
        for use in chain:
            walk.problem(use.node, "a LoRA with no prompt to carry it: a recipe puts each LoRA on a character")
        return "hooks"
    if chain:
        assign_global(drafts, chain)
        if [u.node.id for d in drafts for u, _, _ in d.loras] != [u.node.id for u in chain]:
            walk.note("the LoRAs are merged character by character, in another order than the source's chain")
        _check_global_clips(walk, shape, chain)
        for use in chain:
            if use.node.class_type == "LoraLoaderModelOnly":
                walk.note(f"{use.node.label}: LoraLoaderModelOnly becomes LoraLoader at strength.clip 0")
        return "global"
    return "hooks"


def _check_global_clips(walk: Walk, shape: Shape, chain) -> None:
    want = [u.node.id for u in chain if u.node.class_type == "LoraLoader"]
    for e in shape.main.positive + shape.main.negative:
        if [u.node.id for u in e.clip.loras] != want:
            walk.problem(e.encode, "its text encoder has other LoRAs than the model: a recipe's global LoRAs "
                                   "shape both")


def _scene_from_repaints(drafts: List[Draft], scene: Optional[str]) -> Optional[str]:
    """Refine repaints encode the bare prompt: pass 1's text is it plus the scene."""
    for d in drafts:
        bare = d.bare
        if bare is not None and scene is None and d.prompt.startswith(bare + ", "):
            scene = d.prompt[len(bare) + 2:]
    return scene


def _prompts(walk: Walk, drafts: List[Draft], scene: Optional[str], width: int, height: int) -> Optional[str]:
    """The scene: the compiler folds it into every prompt when the regions
    cover the canvas, so a folded graph shows it as their common tail."""
    boxes = [box_of(d, width, height) for d in drafts]
    folds = bool(drafts) and all(boxes) and regions.covers(boxes, width, height)
    if folds and scene is None and len(drafts) > 1:
        scene = common_scene([d.prompt for d in drafts]) or None
    if folds and scene:
        folded = [d for d in drafts if d.prompt.endswith(", " + scene)]
        for d in folded:
            d.prompt = d.prompt[:-len(scene) - 2]
        if len(folded) < len(drafts):
            walk.note("the scene prompt is folded into each character's prompt: the regions cover the canvas, so "
                      "it needs no pass of its own")
    for d in drafts:
        if not d.prompt.strip():
            walk.problem(d.entry.encode, "an empty prompt: a recipe character needs one")
    return scene


def _character(d: Draft) -> dict:
    out = {}
    if len(d.loras) == 1:
        out["lora"] = d.loras[0][0].file
    elif d.loras:
        out["lora"] = [{"file": u.file, "strength": sm if sm == sc else {"model": sm, "clip": sc}}
                       for u, sm, sc in d.loras]
    if d.trigger:
        out["trigger"] = d.trigger
    if len(d.loras) == 1:
        _, sm, sc = d.loras[0]
        out["strength"] = sm if sm == sc else {"model": sm, "clip": sc}
    out["prompt"] = d.prompt
    if d.spec is not None:
        out["region"] = shorthand(d.spec)
    return out


# -- sampler, negative, guidance ----------------------------------------------------------

def _sampler_and_negative(walk: Walk, shape: Shape, doc: dict) -> None:
    s = dict(shape.main.settings)
    for key in ("cfg", "denoise"):      # the compiler reads them as floats: write them so
        if isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool):
            s[key] = float(s[key])
    doc["sampler"] = s
    neg = shape.main.negative
    texts = list(dict.fromkeys(e.text for e in neg if not e.zero))
    if math.isclose(float(s.get("cfg") or 0), 1.0):
        if any(t.strip() for t in texts):
            walk.note(f"the negative prompt `{texts[0]}` is dropped: at cfg 1 it is never evaluated "
                      "(the compiler zeroes it with ConditioningZeroOut)")
        return
    if any(e.zero for e in neg):
        walk.problem(next(e for e in neg if e.zero).encode, f"a zeroed negative at cfg {s.get('cfg')}: a recipe's "
                     "negative is a prompt")
    for extra in texts[1:]:
        walk.problem(next(e.encode for e in neg if e.text == extra), "a second negative prompt: a recipe has one")
    doc["negative"] = texts[0] if texts else ""
    if any(e.mask is None for e in neg) and any(e.mask is not None for e in shape.main.positive):
        walk.note("the negative prompt gets each region's mask too (PairConditioningSetProperties sets both)")


def _guidance(walk: Walk, shape: Shape, doc: dict, family: str) -> None:
    values = {e.guidance for e in shape.main.positive}
    if len(values) > 1:
        walk.note(f"FluxGuidance differs between prompts ({', '.join(str(v) for v in values)}): the recipe takes "
                  "the first")
    g = next(iter(values), None)
    g = float(g) if isinstance(g, (int, float)) else g
    if family == "flux" and doc["model"].get("variant") != "schnell":
        doc["guidance"] = g
    elif g is not None:
        walk.note(f"FluxGuidance {g} is ignored: {family} has no guidance embedding")
