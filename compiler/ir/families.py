"""One table entry per model family: which loaders, which latent, which
guidance, which defaults. No `if family == ...` anywhere else.

Defaults follow what ComfyUI does (../shared/comfyui/REFERENCE.md), not folklore:
- Flux is guidance-distilled: cfg 1, so the negative is never evaluated (C4);
  guidance goes through FluxGuidance (3.5 is also Flux's built-in default).
- Schnell has no guidance embedding (FluxGuidance is ignored) and uses the
  FLOW schedule with shift 1.0; ModelSamplingFlux would *replace* that with
  dev's time shift, so schnell gets neither node (fact 9).
- SD1.5/SDXL use real classifier-free guidance with a real negative prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

from compiler.ir.frozen import freeze

__all__ = ["Family", "Variant", "FAMILIES", "family_of", "variant_of", "loader_of"]


@dataclass(frozen=True)
class Variant:
    name: str
    flux_guidance: bool        # emit FluxGuidance
    model_sampling: bool       # emit ModelSamplingFlux (dev time shift)
    defaults: Mapping = field(default_factory=lambda: MappingProxyType({}))   # overrides of the family defaults

    def __post_init__(self):
        object.__setattr__(self, "defaults", freeze(self.defaults))


@dataclass(frozen=True)
class Family:
    name: str
    loader: str                # "split" (UNet + text encoders + VAE) or "checkpoint"
    clip_type: str             # DualCLIPLoader type, for split loaders
    latent_node: str
    size_multiple: int         # canvas must be a multiple of this (latent /8 x patch size)
    needs: Tuple[Tuple[str, ...], ...]   # model keys a recipe must name: any one of these sets
    defaults: Mapping          # the full-form defaults of every section (frozen: resolve thaws a copy)
    variants: Mapping[str, Variant]
    default_variant: str

    def __post_init__(self):
        # Shared by every recipe of the family: read-only, so resolving one cannot change the next.
        object.__setattr__(self, "defaults", freeze(self.defaults))
        object.__setattr__(self, "variants", MappingProxyType(dict(self.variants)))


def _defaults(width: int, sampler: str, scheduler: str, steps: int, cfg: float,
              guidance: Optional[float], negative: str) -> dict:
    return {
        "canvas": {"width": width, "height": width},
        "sampler": {"name": sampler, "scheduler": scheduler, "steps": steps, "cfg": cfg,
                    "denoise": 1.0, "seed": 0},
        "guidance": guidance,
        "negative": negative,
        "hires": None,
        "lora_mode": "hooks",
        "scene": "",
    }


FLUX = Family(
    name="flux", loader="split", clip_type="flux", latent_node="EmptySD3LatentImage",
    size_multiple=16, needs=(("unet", "text_encoders", "vae"), ("checkpoint",)),
    defaults=_defaults(1024, "euler", "simple", 24, 1.0, 3.5, ""),
    variants={
        "dev": Variant("dev", flux_guidance=True, model_sampling=True),
        "srpo": Variant("srpo", flux_guidance=True, model_sampling=True),
        "schnell": Variant("schnell", flux_guidance=False, model_sampling=False,
                           defaults={"sampler": {"steps": 4}, "guidance": None}),
    },
    default_variant="dev",
)

_SD_VARIANTS = MappingProxyType({"base": Variant("base", flux_guidance=False, model_sampling=False)})

SD15 = Family(
    name="sd15", loader="checkpoint", clip_type="", latent_node="EmptyLatentImage",
    size_multiple=8, needs=(("checkpoint",),),
    defaults=_defaults(512, "dpmpp_2m", "karras", 25, 6.0, None, "blurry, lowres, bad anatomy"),
    variants=_SD_VARIANTS, default_variant="base",
)

SDXL = Family(
    name="sdxl", loader="checkpoint", clip_type="", latent_node="EmptyLatentImage",
    size_multiple=8, needs=(("checkpoint",),),
    defaults=_defaults(1024, "dpmpp_2m", "karras", 30, 6.0, None, "blurry, lowres, bad anatomy"),
    variants=_SD_VARIANTS, default_variant="base",
)

FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in (FLUX, SD15, SDXL)})


def loader_of(family: Family, model) -> str:
    """"checkpoint" when the recipe names an all-in-one file (also for Flux),
    else the family's own loader."""
    return "checkpoint" if getattr(model, "checkpoint", None) else family.loader


def family_of(name: str) -> Family:
    return FAMILIES[name]


def variant_of(family: Family, name: Optional[str]) -> Variant:
    return family.variants[name or family.default_variant]
