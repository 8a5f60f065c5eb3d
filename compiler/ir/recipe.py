"""The resolved recipe: the only shape the lowering and later stages see.

Every field is filled in: presets merged, templates rendered, defaults taken
from the model family, shorthand expanded. The dataclasses are frozen so no
pass can change a recipe behind another's back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from compiler.errors import Location
from compiler.source import key_path, parse_key_path

__all__ = ["Box", "InputFile", "Region", "Lora", "Character", "Model", "Sampler", "Hires", "Output", "Canvas", "Refine", "Recipe"]


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels, x/y from the top-left corner."""
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h


@dataclass(frozen=True)
class InputFile:
    """A local file the server needs, uploaded under a content-derived name
    so the graph is deterministic and ComfyUI's cache sees real changes."""
    key: str                   # the recipe key that names it
    path: str                  # absolute local path
    name: str                  # name on the server: <sha256[:12]>-<basename>


@dataclass(frozen=True)
class Region:
    kind: str                  # columns | rows | box | full | mask
    box: Box                   # the region proper, before feathering
    feather: int               # soft-edge width in pixels
    spec: Tuple = ()           # the full form as sorted (key, value) pairs, lists as tuples
    mask: Optional[InputFile] = None   # a painted mask (kind "mask")
    channel: str = "red"


@dataclass(frozen=True)
class Lora:
    file: str
    strength_model: float
    strength_clip: float

    @property
    def active(self) -> bool:
        return self.strength_model != 0 or self.strength_clip != 0


@dataclass(frozen=True)
class Character:
    id: str
    name: str
    loras: Tuple[Lora, ...]    # stacked in this order; () for a prompt-only character
    trigger: str
    prompt: str                # rendered, trigger first
    region: Region

    @property
    def lora(self) -> Optional[str]:
        return self.loras[0].file if self.loras else None

    @property
    def active_loras(self) -> Tuple[Lora, ...]:
        return tuple(l for l in self.loras if l.active)


@dataclass(frozen=True)
class Model:
    family: str
    variant: str
    unet: Optional[str]
    unet_format: str           # safetensors | gguf
    weight_dtype: str
    text_encoders: Tuple[str, ...]
    text_encoder_device: str
    vae: Optional[str]
    checkpoint: Optional[str]


@dataclass(frozen=True)
class Sampler:
    name: str
    scheduler: str
    steps: int
    cfg: float
    denoise: float
    seed: int


@dataclass(frozen=True)
class Hires:
    scale: float
    denoise: float
    steps: int
    upscale_method: str


@dataclass(frozen=True)
class Refine:
    """`lora_mode: refine`: pass 2 repaints each character's box with only its LoRA."""
    base: str                  # pass 1: "none" (no LoRA) or "hooks"
    margin: Optional[int]      # pixels around the region; None: each region's feather
    denoise: float
    steps: int


@dataclass(frozen=True)
class Output:
    prefix: str
    batch_size: int


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    model: Model
    canvas: Canvas
    lora_mode: str
    characters: Tuple[Character, ...]
    scene: str
    negative: str
    sampler: Sampler
    guidance: Optional[float]
    hires: Optional[Hires]
    output: Output
    image: Optional[InputFile] = None   # img2img source
    image_resize: str = "crop"
    refine: Optional[Refine] = None
    cond_area: str = "default"          # ConditioningSetMask set_cond_area: "default" | "mask bounds"
    # The full-form document this recipe was built from (written back as
    # recipe.resolved.yaml) and where each of its keys came from.
    document: Mapping = field(compare=False, repr=False, default_factory=dict)
    locations: Mapping[str, Location] = field(compare=False, repr=False, default_factory=dict)

    @property
    def inputs(self) -> Tuple[InputFile, ...]:
        """Every local file to upload before the prompt is queued."""
        masks = tuple(c.region.mask for c in self.characters if c.region.mask)
        return ((self.image,) if self.image else ()) + masks

    def locate(self, key: str) -> Location:
        """Location of a recipe key (`characters.roxy.lora[1]`), or of its nearest
        located parent. The key is parsed, so a list item's parent is the list
        (which --set may have written), not the mapping above it."""
        try:
            path = parse_key_path(key)
        except ValueError:   # not a key path: only an exact match can place it
            path = ()
        for probe in [key] + [key_path(path[:n]) for n in range(len(path) - 1, 0, -1)]:
            loc = self.locations.get(probe) if probe else None
            if loc is not None:
                return Location(loc.file, loc.line, loc.col, key)
        return Location(self.source, 0, 0, key)
