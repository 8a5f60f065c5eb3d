"""What feeds a sampler's model and an encoder's clip: loaders, LoraLoader
chains, ModelSamplingFlux, SetClipHooks and the hook LoRAs behind them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from compiler.comfy.importer.graph import Ref, SNode, Walk
from compiler.comfy.importer.known import CLIP_LOADERS, MODEL_LOADERS

__all__ = ["LoraUse", "ModelPath", "ClipPath", "model_path", "clip_path", "hook_loras", "stem"]


@dataclass(frozen=True)
class LoraUse:
    node: SNode
    file: str
    model: float
    clip: float


@dataclass(frozen=True)
class ModelPath:
    root: Optional[SNode]          # UNETLoader, UnetLoaderGGUF or CheckpointLoaderSimple
    loras: tuple                   # LoraUse, in the order they are applied
    sampling: Optional[SNode]      # ModelSamplingFlux
    unshifted: Optional[Ref]       # the model below ModelSamplingFlux


@dataclass(frozen=True)
class ClipPath:
    root: Optional[SNode]          # DualCLIPLoader(GGUF) or CheckpointLoaderSimple
    loras: tuple                   # LoraLoader uses, in the order applied
    set_hooks: Optional[SNode]     # SetClipHooks right above the encoder
    tip: Optional[str] = None      # id of the node that gives the clip below SetClipHooks


def stem(file: str) -> str:
    """`characters\\roxy-v2.safetensors` -> `roxy-v2`."""
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _lora(node: SNode, walk: Walk) -> LoraUse:
    model_only = node.class_type in ("LoraLoaderModelOnly", "CreateHookLoraModelOnly")
    return LoraUse(node, str(walk.value(node, "lora_name", "")), float(walk.number(node, "strength_model", 1.0)),
                   0.0 if model_only else float(walk.number(node, "strength_clip", 1.0)))


def model_path(walk: Walk, ref: Ref) -> ModelPath:
    return walk.remembered(("model", ref), lambda: _model_path(walk, ref))


def _model_path(walk: Walk, ref: Ref) -> ModelPath:
    sampling, loras, unshifted = None, [], None
    while True:
        node = walk.node(ref)
        if node.class_type == "ModelSamplingFlux" and sampling is None:
            sampling = node
            unshifted = node.get("model")
        elif node.class_type in ("LoraLoader", "LoraLoaderModelOnly") and ref.slot == 0:
            loras.append(_lora(node, walk))
        else:
            break
        walk.claimed.add(node.id)
        ref = walk.link(node, "model")
        if ref is None:
            break
    root = walk.take(ref, MODEL_LOADERS, "a model step a recipe does not make (it loads with UNETLoader, "
                                         "UnetLoaderGGUF or CheckpointLoaderSimple, then LoraLoader and ModelSamplingFlux)")
    if root is not None and ref.slot != 0:
        walk.problem(root, f"output {ref.slot} used as a model")
    return ModelPath(root, tuple(reversed(loras)), sampling, unshifted)


def clip_path(walk: Walk, ref: Ref) -> ClipPath:
    return walk.remembered(("clip", ref), lambda: _clip_path(walk, ref))


def _clip_path(walk: Walk, ref: Ref) -> ClipPath:
    set_hooks, loras = None, []
    node = walk.node(ref)
    if node is not None and node.class_type == "SetClipHooks":
        walk.claimed.add(node.id)
        set_hooks, ref = node, walk.link(node, "clip")
    tip = ref.node if isinstance(ref, Ref) else None
    node = walk.node(ref)
    while node is not None and node.class_type == "LoraLoader" and ref.slot == 1:
        walk.claimed.add(node.id)
        loras.append(_lora(node, walk))
        ref = walk.link(node, "clip")
        node = walk.node(ref)
    root = walk.take(ref, CLIP_LOADERS, "a text-encoder step a recipe does not make (it loads with "
                                        "DualCLIPLoader or CheckpointLoaderSimple, then LoraLoader and SetClipHooks)")
    if root is not None and root.class_type == "CheckpointLoaderSimple" and ref.slot != 1:
        walk.problem(root, f"output {ref.slot} used as a text encoder")
    return ClipPath(root, tuple(reversed(loras)), set_hooks, tip)


def hook_loras(walk: Walk, ref: Optional[Ref]) -> tuple:
    """The LoRAs of a hook group (a CreateHookLora chain through prev_hooks),
    in stack order."""
    out: List[LoraUse] = []
    while isinstance(ref, Ref):
        node = walk.take(ref, ("CreateHookLora", "CreateHookLoraModelOnly"),
                         "a hook step a recipe does not make (it makes one CreateHookLora per LoRA)")
        if node is None:
            break
        out.append(_lora(node, walk))
        ref = node.get("prev_hooks")
    return tuple(reversed(out))
