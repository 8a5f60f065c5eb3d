"""Facts about the ComfyUI node classes the graphs use, in one table.

Per class: its stage (what the timing table and the progress lines call
it), and, for LoRA classes, how the LoRA is applied, which decides what it
costs (REFERENCE C2): a global LoRA is merged into the model once at load;
a hooked one is merged on the first step of every KSampler run. Also the
WebSocket events that end a prompt, and the result each one means.

Classes not in the table are "prepare": the small nodes between loading
and sampling (masks, conditioning, latents).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Tuple

__all__ = ["NodeClass", "NODE_CLASSES", "STAGES", "GLOBAL_LORAS", "HOOKED_LORAS", "LORA_CLASSES",
           "MODEL_FILE_LISTS", "TERMINAL_EVENTS", "purpose", "is_heavy"]

# In the order a prompt runs them; the timing table is sorted by it.
STAGES = ("load", "encode", "prepare", "sample", "decode", "save")
DEFAULT_STAGE = "prepare"


@dataclass(frozen=True)
class NodeClass:
    stage: str                 # one of STAGES
    lora: str = ""             # "global" | "hooked" | "" (not a LoRA)


NODE_CLASSES: Mapping[str, NodeClass] = MappingProxyType({
    "UNETLoader": NodeClass("load"), "UnetLoaderGGUF": NodeClass("load"),
    "DualCLIPLoader": NodeClass("load"), "DualCLIPLoaderGGUF": NodeClass("load"),
    "VAELoader": NodeClass("load"), "CheckpointLoaderSimple": NodeClass("load"),
    "LoadImage": NodeClass("load"),
    "LoraLoader": NodeClass("load", lora="global"), "LoraLoaderModelOnly": NodeClass("load", lora="global"),
    "CLIPTextEncode": NodeClass("encode"), "SetClipHooks": NodeClass("encode"), "VAEEncode": NodeClass("encode"),
    "CreateHookLora": NodeClass("encode", lora="hooked"),
    "CreateHookLoraModelOnly": NodeClass("encode", lora="hooked"),
    "KSampler": NodeClass("sample"),
    "VAEDecode": NodeClass("decode"),
    "SaveImage": NodeClass("save"),
})

GLOBAL_LORAS = frozenset(k for k, v in NODE_CLASSES.items() if v.lora == "global")
HOOKED_LORAS = frozenset(k for k, v in NODE_CLASSES.items() if v.lora == "hooked")
LORA_CLASSES = GLOBAL_LORAS | HOOKED_LORAS

# Where a server's /object_info lists each kind of model file: (node class, input)
# pairs, the kinds named as the catalogue check names them.
MODEL_FILE_LISTS: Mapping[str, Tuple[Tuple[str, str], ...]] = MappingProxyType({
    "diffusion model": (("UNETLoader", "unet_name"), ("UnetLoaderGGUF", "unet_name")),
    "text encoder": (("DualCLIPLoader", "clip_name1"), ("CLIPLoader", "clip_name"),
                     ("DualCLIPLoaderGGUF", "clip_name1")),
    "VAE": (("VAELoader", "vae_name"),),
    "checkpoint": (("CheckpointLoaderSimple", "ckpt_name"),),
    "LoRA": (("LoraLoader", "lora_name"), ("CreateHookLora", "lora_name"), ("LoraLoaderModelOnly", "lora_name")),
})

# The events that end a prompt, on the WebSocket and in /history status.messages.
TERMINAL_EVENTS: Mapping[str, str] = MappingProxyType({
    "execution_success": "success", "execution_error": "error", "execution_interrupted": "interrupted"})


def purpose(class_type: str) -> str:
    """What a node is for, in the words the timing table uses: its stage."""
    known = NODE_CLASSES.get(class_type)
    return known.stage if known else DEFAULT_STAGE


def is_heavy(class_type: str) -> bool:
    """A node whose rerun costs the most: a loader or a LoRA (a sweep orders jobs to share these)."""
    return purpose(class_type) == "load" or class_type in LORA_CLASSES
