"""A sampler's positive or negative input as the list of conds it really is.

ComfyUI's CONDITIONING is a list: Combine concatenates, the Set Props and
SetMask nodes set keys on every entry, FluxGuidance sets `guidance` on
every entry, and a SetClipHooks(apply_to_conds) clip hooks every cond it
encodes (REFERENCE, hooks). Reading the graph as that list makes the many
ways users wire the same regional picture look alike: a Pair chain, a
ConditioningSetMask + Combine tree, hooks on the clip or on the Pair node.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

from compiler.comfy.importer.graph import Ref, SNode, Walk
from compiler.comfy.importer.models import ClipPath, clip_path

__all__ = ["Entry", "entries"]


@dataclass(frozen=True)
class Entry:
    encode: SNode                   # the CLIPTextEncode
    text: str
    clip: ClipPath
    zero: bool = False              # ConditioningZeroOut
    mask: Optional[Ref] = None
    hooks: Tuple[Ref, ...] = ()     # hook groups on this cond (props hooks, or the clip's apply_to_conds)
    strength: float = 1.0
    area: str = "default"
    guidance: Optional[float] = None
    new: bool = False               # came in as a Set Props node's *_NEW input: a region, not the scene
    props: Optional[SNode] = None   # the node that set its mask/hooks


def entries(walk: Walk, ref: Ref) -> List[Entry]:
    return walk.remembered(("cond", ref), lambda: _entries(walk, ref))


def _entries(walk: Walk, ref: Ref) -> List[Entry]:
    node = walk.node(ref)
    step = _STEPS.get(node.class_type)
    if step is None:
        walk.unmapped(node, "a conditioning step a recipe does not make")
        return []
    walk.claimed.add(node.id)
    return step(walk, node, ref.slot)


def _of(walk: Walk, node: SNode, name: str) -> List[Entry]:
    ref = node.get(name)
    return entries(walk, ref) if isinstance(ref, Ref) else []


def _encode(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    clip = clip_path(walk, node.get("clip")) if isinstance(node.get("clip"), Ref) else ClipPath(None, (), None)
    hooks: Tuple[Ref, ...] = ()
    sh = clip.set_hooks
    if sh is not None and walk.value(sh, "apply_to_conds", True) and isinstance(sh.get("hooks"), Ref):
        hooks = (sh.get("hooks"),)
    if sh is not None and walk.value(sh, "schedule_clip", False):
        walk.problem(sh, "schedule_clip: a recipe encodes each prompt once")
    return [Entry(node, str(walk.value(node, "text", "")), clip, hooks=hooks)]


def _encode_flux(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    """CLIPTextEncodeFlux with one text for both encoders is CLIPTextEncode +
    FluxGuidance (it stores `guidance` in the cond, as FluxGuidance does)."""
    clip_l, t5 = str(walk.value(node, "clip_l", "")), str(walk.value(node, "t5xxl", ""))
    if clip_l != t5:
        walk.problem(node, "different clip_l and t5xxl prompts: a recipe encodes one prompt with both")
    walk.note("CLIPTextEncodeFlux becomes CLIPTextEncode and FluxGuidance")
    entry = _encode(walk, replace(node, inputs=node.inputs + (("text", t5),)), slot)[0]
    return [replace(entry, encode=node, guidance=float(walk.number(node, "guidance", 3.5)))]


def _props(walk: Walk, node: SNode, items: List[Entry], masked_only: bool = False) -> List[Entry]:
    """What a Set Props / SetMask node does to each cond of its input."""
    mask = node.get("mask")
    hooks = node.get("hooks")
    if node.get("timesteps") is not None:
        walk.problem(node, "timesteps: a recipe applies a region for the whole schedule")
    out = []
    for e in items:
        out.append(replace(e, mask=mask if isinstance(mask, Ref) else e.mask,
                           hooks=e.hooks + ((hooks,) if isinstance(hooks, Ref) else ()),
                           strength=float(walk.number(node, "strength", 1.0)),
                           area=str(walk.value(node, "set_cond_area", "default")),
                           new=e.new or not masked_only, props=node))
    return out


def _zero(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return [replace(e, zero=True) for e in _of(walk, node, "conditioning")]


def _combine(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return _of(walk, node, "conditioning_1") + _of(walk, node, "conditioning_2")


def _set_mask(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return _props(walk, node, _of(walk, node, "conditioning"), masked_only=True)


def _set_props(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return _props(walk, node, _of(walk, node, "cond_NEW"))


def _set_props_combine(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return _of(walk, node, "cond") + _props(walk, node, _of(walk, node, "cond_NEW"))


def _pair(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    return _props(walk, node, _of(walk, node, "negative_NEW" if slot else "positive_NEW"))


def _pair_combine(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    side = "negative" if slot else "positive"
    return _of(walk, node, side) + _props(walk, node, _of(walk, node, f"{side}_NEW"))


def _guidance(walk: Walk, node: SNode, slot: int) -> List[Entry]:
    g = float(walk.number(node, "guidance", 3.5))
    return [replace(e, guidance=g) for e in _of(walk, node, "conditioning")]


_STEPS: Dict[str, Callable[[Walk, SNode, int], List[Entry]]] = {
    "CLIPTextEncode": _encode, "CLIPTextEncodeFlux": _encode_flux, "ConditioningZeroOut": _zero, "ConditioningCombine": _combine,
    "ConditioningSetMask": _set_mask, "ConditioningSetProperties": _set_props,
    "ConditioningSetPropertiesAndCombine": _set_props_combine, "PairConditioningSetProperties": _pair,
    "PairConditioningSetPropertiesAndCombine": _pair_combine, "FluxGuidance": _guidance,
}
