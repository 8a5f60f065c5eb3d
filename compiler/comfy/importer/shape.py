"""The walk from the output back: which node saves, which decodes, the chain
of latents (hires pass, refine repaints, the main sampler) and what each
sampler reads. The lowering's order, read in reverse:

    SaveImage <- VAEDecode <- [KSampler <- LatentUpscaleBy] <-
        [LatentCompositeMasked <- KSampler <- LatentCrop]* <- KSampler <- latent
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from compiler.comfy.importer.conds import Entry, entries
from compiler.comfy.importer.graph import ImportProblems, Ref, SNode, Walk
from compiler.comfy.importer.known import LATENTS, SAMPLERS
from compiler.comfy.importer.models import ModelPath, model_path
from compiler.errors import Location, RecipeError
from compiler.ir.recipe import Box

__all__ = ["Sampling", "Repaint", "Hires", "Shape", "read_shape", "SAMPLER_KEYS"]

SECOND_OUTPUTS = frozenset({"SaveImage", "SaveLatent", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveImageWebsocket"})
SAMPLER_KEYS = ("name", "scheduler", "steps", "cfg", "denoise", "seed")


@dataclass
class Sampling:
    node: SNode
    settings: dict                  # name, scheduler, steps, cfg, denoise, seed
    model: ModelPath
    positive: List[Entry]
    negative: List[Entry]


@dataclass
class Repaint:
    """One character's refine pass: crop, sample with its own LoRAs, paste back."""
    composite: SNode
    box: Box
    sampling: Sampling
    mask: Optional[Ref]             # the pass-1 mask CropMask cuts, or None (no region mask)


@dataclass
class Hires:
    upscale: SNode
    sampling: Sampling


@dataclass
class Shape:
    output: SNode
    main: Sampling
    latent: dict
    vae: Optional[Ref]
    repaints: List[Repaint] = field(default_factory=list)
    hires: Optional[Hires] = None


def read_shape(walk: Walk) -> Shape:
    output = _pick_output(walk)
    decode = walk.take(walk.link(output, "images"), ("VAEDecode",), "the saved picture should come from a VAEDecode here")
    if decode is None:
        raise _stop(walk, output, "its images do not come from a VAEDecode")
    ref = walk.link(decode, "samples")
    hires = _hires(walk, ref)
    if hires:
        ref = hires.upscale.get("samples")
    repaints = []
    while _is(walk, ref, "LatentCompositeMasked"):
        repaints.append(_repaint(walk, walk.node(ref)))
        ref = walk.node(ref).get("destination")
    node = walk.take(ref, SAMPLERS, "the picture should come from a KSampler here")
    if node is None:
        raise _stop(walk, decode, "no KSampler makes the picture")
    main = _sampling(walk, node)
    latent = _latent(walk, walk.link(node, "latent_image"))
    return Shape(output, main, latent, decode.get("vae"), list(reversed(repaints)), hires)


def _stop(walk: Walk, node: SNode, why: str) -> RecipeError:
    """Nothing to build a recipe on: the problems found so far, or why."""
    if walk.problems:
        return ImportProblems(walk.graph.source, walk.problems)
    return RecipeError(f"{node.label}: {why}: nothing a recipe makes", Location(walk.graph.source))


def _is(walk: Walk, ref, class_type: str) -> bool:
    node = walk.node(ref)
    return node is not None and node.class_type == class_type


def _pick_output(walk: Walk) -> SNode:
    """The SaveImage with the longest history (a PreviewImage if there is none);
    every other output is reported, anything not feeding it is ignored."""
    nodes = walk.graph.nodes.values()
    saves = [n for n in nodes if n.class_type == "SaveImage"] or [n for n in nodes if n.class_type == "PreviewImage"]
    if not saves:
        raise RecipeError("no SaveImage node: nothing says which picture the graph makes", Location(walk.graph.source))
    output = max(saves, key=lambda n: len(walk.graph.ancestors(n.id)))
    walk.claimed.add(output.id)
    if output.class_type == "PreviewImage":
        walk.note("the PreviewImage becomes a SaveImage (a recipe saves its picture)")
    used = walk.graph.ancestors(output.id) | {output.id}
    others = set().union(*(walk.graph.ancestors(s.id) for s in saves if s is not output))
    loose = []
    for n in nodes:
        if n.id in used:
            continue
        if n.class_type in SECOND_OUTPUTS:
            walk.problem(n, "a second output: a recipe saves one picture")
        elif n.class_type not in ("Note", "MarkdownNote", "PreviewImage") and n.id not in others:
            loose.append(n.id)
    if loose:
        walk.note(f"not connected to the output, so ignored: node{'s' if len(loose) > 1 else ''} {', '.join(loose)}")
    return output


def _settings(walk: Walk, node: SNode) -> dict:
    v = lambda name, default=None: walk.value(node, name, default)  # noqa: E731
    common = {"name": str(v("sampler_name", "euler")), "scheduler": str(v("scheduler", "simple")),
              "steps": walk.integer(node, "steps", 20), "cfg": walk.number(node, "cfg", 1.0)}
    if node.class_type == "KSampler":
        return {**common, "denoise": walk.number(node, "denoise", 1.0), "seed": walk.integer(node, "seed")}
    steps, end = common["steps"], walk.integer(node, "end_at_step", 10000)
    walk.note("KSamplerAdvanced over its whole schedule becomes KSampler at denoise 1")
    if v("add_noise", "enable") != "enable" or walk.integer(node, "start_at_step") != 0 or end < steps:
        walk.problem(node, f"KSamplerAdvanced from step {v('start_at_step', 0)} to {end} of {steps}"
                           f"{' without noise' if v('add_noise') == 'disable' else ''}: a recipe samples the whole "
                           "schedule (use denoise for a partial one)")
    return {**common, "denoise": 1.0, "seed": walk.integer(node, "noise_seed")}


def _sampling(walk: Walk, node: SNode) -> Sampling:
    refs = {name: walk.link(node, name) for name in ("model", "positive", "negative")}
    model = model_path(walk, refs["model"]) if refs["model"] else ModelPath(None, (), None, None)
    pos = entries(walk, refs["positive"]) if refs["positive"] else []
    neg = entries(walk, refs["negative"]) if refs["negative"] else []
    return Sampling(node, _settings(walk, node), model, pos, neg)


def _hires(walk: Walk, ref) -> Optional[Hires]:
    node = walk.node(ref)
    if node is None or node.class_type not in SAMPLERS or not _is(walk, node.get("latent_image"), "LatentUpscaleBy"):
        return None
    walk.claimed.add(node.id)
    upscale = walk.node(node.get("latent_image"))
    walk.claimed.add(upscale.id)
    return Hires(upscale, _sampling(walk, node))


def _repaint(walk: Walk, composite: SNode) -> Repaint:
    walk.claimed.add(composite.id)
    sampler = walk.take(composite.get("source"), ("KSampler",), "a refine repaint's KSampler should be here")
    crop = sampler and walk.take(sampler.get("latent_image"), ("LatentCrop",), "a refine repaint's LatentCrop "
                                                                                "should be here")
    if sampler is None or crop is None:
        raise _stop(walk, composite, "a LatentCompositeMasked that is not a refine repaint")
    if crop.get("samples") != composite.get("destination"):
        walk.problem(crop, "it crops another latent than the one its repaint is pasted onto")
    box = Box(*(walk.integer(crop, k, 64) for k in ("x", "y", "width", "height")))
    at = tuple(walk.integer(composite, k) for k in ("x", "y"))
    if at != (box.x, box.y) or walk.value(composite, "resize_source", False):
        walk.problem(composite, "the repaint is pasted elsewhere than it was cropped from")
    mask = composite.get("mask")
    if isinstance(mask, Ref):
        cut = walk.take(mask, ("CropMask",), "a refine repaint's mask should be CropMask of the "
                                                    "region's mask here")
        mask = cut.get("mask") if cut else None
        if cut and tuple(walk.integer(cut, k) for k in ("x", "y", "width", "height")) != \
                (box.x, box.y, box.w, box.h):
            walk.problem(cut, "it cuts another box than the repaint's crop")
    return Repaint(composite, box, _sampling(walk, sampler), mask)


def _latent(walk: Walk, ref) -> dict:
    node = walk.take(ref, LATENTS, "the sampler's latent should be an empty latent or an "
                                              "encoded picture here")
    if node is None:
        return {}
    if node.class_type in ("EmptyLatentImage", "EmptySD3LatentImage"):
        return {"node": node, "width": walk.integer(node, "width", 1024), "height": walk.integer(node, "height", 1024),
                "batch_size": walk.integer(node, "batch_size", 1)}
    batch = 1
    if node.class_type == "RepeatLatentBatch":
        batch = walk.integer(node, "amount", 1)
        node = walk.take(walk.link(node, "samples"), ("VAEEncode",), "a RepeatLatentBatch should repeat an encoded picture")
        if node is None:
            return {}
    return {**_picture(walk, node), "node": node, "batch_size": batch, "vae": node.get("vae")}


def _picture(walk: Walk, encode: SNode) -> dict:
    scale = walk.node(walk.link(encode, "pixels"))
    if scale is None or scale.class_type != "ImageScale":
        load = walk.take(encode.get("pixels"), ("LoadImage",), "the picture to encode should be a LoadImage here")
        if load is not None:
            walk.problem(encode, "the picture is encoded at its own size, which the importer cannot read from a "
                                 "file name; a recipe scales it to canvas: (add ImageScale, or set canvas: by hand)")
            return {"image": walk.value(load, "image"), "resize": "crop"}
        return {}
    walk.claimed.add(scale.id)
    load = walk.take(walk.link(scale, "image"), ("LoadImage",), "the picture to encode should be a LoadImage here")
    if walk.value(scale, "upscale_method") != "lanczos":
        walk.note(f"the picture is scaled with lanczos, not {walk.value(scale, 'upscale_method')}")
    return {"image": walk.value(load, "image") if load else None, "width": walk.integer(scale, "width", 1024),
            "height": walk.integer(scale, "height", 1024),
            "resize": "crop" if walk.value(scale, "crop") == "center" else "stretch"}
