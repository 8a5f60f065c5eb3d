"""Every node class the importer reads, so a message can tell a misplaced
core node from one it has never heard of."""
from __future__ import annotations

__all__ = ["KNOWN", "MODEL_LOADERS", "CLIP_LOADERS", "SAMPLERS", "LATENTS", "OUTPUTS"]

MODEL_LOADERS = frozenset({"UNETLoader", "UnetLoaderGGUF", "CheckpointLoaderSimple"})
CLIP_LOADERS = frozenset({"DualCLIPLoader", "DualCLIPLoaderGGUF", "CheckpointLoaderSimple"})
SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced"})
LATENTS = frozenset({"EmptyLatentImage", "EmptySD3LatentImage", "VAEEncode", "RepeatLatentBatch"})
OUTPUTS = frozenset({"SaveImage", "PreviewImage"})

KNOWN = MODEL_LOADERS | CLIP_LOADERS | SAMPLERS | LATENTS | OUTPUTS | frozenset({
    "VAELoader", "VAEDecode", "LoraLoader", "LoraLoaderModelOnly", "ModelSamplingFlux",
    "CreateHookLora", "CreateHookLoraModelOnly", "SetClipHooks", "CLIPTextEncode", "CLIPTextEncodeFlux", "ConditioningZeroOut",
    "ConditioningCombine", "ConditioningSetMask", "ConditioningSetProperties",
    "ConditioningSetPropertiesAndCombine", "PairConditioningSetProperties",
    "PairConditioningSetPropertiesAndCombine", "FluxGuidance", "SolidMask", "FeatherMask", "MaskComposite",
    "InvertMask", "LoadImageMask", "LoadImage", "ImageToMask", "MaskToImage", "ImageScale", "CropMask",
    "LatentUpscaleBy", "LatentCrop", "LatentCompositeMasked", "PrimitiveInt", "PrimitiveFloat",
    "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean", "Note", "MarkdownNote", "SaveLatent",
})
