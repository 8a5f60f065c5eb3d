"""The advisor: rules that catch known failures before a single step runs.

Each rule is a function (recipe, graph) -> findings, listed in `RULES`; every
finding names the recipe key and file:line, says why and what to do. Errors
block compile/run; warnings are printed (and block with --strict). All facts
are from ../shared/comfyui/REFERENCE.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterable, List, Tuple

from compiler.ir import regions
from compiler.errors import AdviceError, Location, RecipeError
from compiler.ir.families import family_of, variant_of
from compiler.ir.graph import Graph
from compiler.ir.nodes import GLOBAL_LORAS, LORA_CLASSES
from compiler.lower import gguf_hook_conflict, refine_owner
from compiler.ir.recipe import Recipe
from compiler.resolve.schema import suggest

__all__ = ["Finding", "RULES", "advise", "raise_errors", "SAMPLERS", "SCHEDULERS"]

# comfy/samplers.py:723-727, 1071, 1080-1091 (REFERENCE B). A live catalogue,
# when there is one, is checked by catalogue.py as well.
SAMPLERS = tuple(("euler euler_cfg_pp euler_ancestral euler_ancestral_cfg_pp heun heunpp2 exp_heun_2_x0 "
            "exp_heun_2_x0_sde dpm_2 dpm_2_ancestral lms dpm_fast dpm_adaptive dpmpp_2s_ancestral "
            "dpmpp_2s_ancestral_cfg_pp dpmpp_sde dpmpp_sde_gpu dpmpp_2m dpmpp_2m_cfg_pp dpmpp_2m_sde "
            "dpmpp_2m_sde_gpu dpmpp_2m_sde_heun dpmpp_2m_sde_heun_gpu dpmpp_3m_sde dpmpp_3m_sde_gpu ddpm "
            "lcm ipndm ipndm_v deis res_multistep res_multistep_cfg_pp res_multistep_ancestral "
            "res_multistep_ancestral_cfg_pp gradient_estimation gradient_estimation_cfg_pp er_sde "
            "seeds_2 seeds_3 sa_solver sa_solver_pece ddim uni_pc uni_pc_bh2").split())
SCHEDULERS = tuple("simple sgm_uniform karras exponential ddim_uniform beta normal linear_quadratic kl_optimal".split())
# Names from other tools that people type; difflib alone would say euler_a -> euler.
SAMPLER_ALIASES = MappingProxyType({"euler_a": "euler_ancestral", "euler a": "euler_ancestral", "dpm++_2m": "dpmpp_2m",
                   "dpm++ 2m": "dpmpp_2m", "dpm++_sde": "dpmpp_sde", "dpm++ sde": "dpmpp_sde",
                   "dpm++_2m_sde": "dpmpp_2m_sde", "dpm++ 2m sde": "dpmpp_2m_sde", "unipc": "uni_pc",
                   "dpm2": "dpm_2", "dpm2_a": "dpm_2_ancestral", "dpm++_2s_a": "dpmpp_2s_ancestral"})


@dataclass(frozen=True)
class Finding:
    level: str            # error | warning
    code: str
    message: str
    location: Location
    hint: str = ""

    def format(self) -> str:
        return f"{self.level}: {self.location}: {self.message}" + (f" ({self.hint})" if self.hint else "")


Rule = Callable[[Recipe, Graph], Iterable[Finding]]


def advise(recipe: Recipe, graph: Graph) -> List[Finding]:
    found = [f for rule in RULES for f in rule(recipe, graph)]
    return sorted(found, key=lambda f: (f.level != "error", f.location.line, f.code))


def raise_errors(findings: List[Finding], strict: bool = False) -> None:
    blocking = [f for f in findings if f.level == "error" or strict]
    if blocking:
        raise AdviceError([RecipeError(f.message, f.location, f.hint) for f in blocking])


def _e(code, msg, loc, hint=""):
    return Finding("error", code, msg, loc, hint)


def _w(code, msg, loc, hint=""):
    return Finding("warning", code, msg, loc, hint)


# -- errors ---------------------------------------------------------------------

def gguf_with_hooks(r: Recipe, g: Graph):
    conflict = gguf_hook_conflict(r)
    if conflict:
        yield _e("gguf-hooks", *conflict)


def lora_twice(r: Recipe, g: Graph):
    seen: dict = {}
    for node in g:
        if node.class_type in LORA_CLASSES:
            name, owner = node.input("lora_name"), _character_of(node.origin)
            # refine's pass 2 merges a character's LoRA into a model of its own
            # (char.<id>.refine.*): the same LoRA as a hook in pass 1 is by design.
            scope = refine_owner(node.id) or ""
            first = seen.get((scope, name))
            if first is None:
                seen[(scope, name)] = (node.origin, owner)
            elif node.class_type in GLOBAL_LORAS or first[1] == owner:
                # One model carries both (a global chain, or one character's hook stack).
                yield _e("lora-twice", f"LoRA `{name}` is applied twice (also by {first[0]}): its effect doubles",
                         r.locate(node.origin), "use it once, on one character, or give the characters different LoRAs")
            else:
                # Two hook groups, one per region: no doubling, but two passes a step for one look.
                yield _w("lora-twice", f"LoRA `{name}` is on both {first[1]} and {owner}: both regions get the "
                         "same identity, and as two hook groups it costs two passes a step",
                         r.locate(node.origin), "give each character its own LoRA, or, if both should look "
                         "like this, use lora_mode: global (one pass a step)")


def _character_of(origin: str) -> str:
    """`characters.roxy.lora[1]` -> `roxy`."""
    parts = origin.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "characters" else origin


def sampler_names(r: Recipe, g: Graph):
    s = r.sampler
    if s.name not in SAMPLERS:
        fix = SAMPLER_ALIASES.get(s.name.lower())
        hint = f" (did you mean `{fix}`?)" if fix else suggest(s.name, SAMPLERS)
        yield _e("sampler", f"`{s.name}` is not a ComfyUI sampler{hint}", r.locate("sampler.name"),
                 "ComfyUI rejects unknown names at validation")
    if s.scheduler not in SCHEDULERS:
        yield _e("scheduler", f"`{s.scheduler}` is not a ComfyUI scheduler{suggest(s.scheduler, SCHEDULERS)}",
                 r.locate("sampler.scheduler"), "one of: " + ", ".join(SCHEDULERS))


def canvas_multiple(r: Recipe, g: Graph):
    m = family_of(r.model.family).size_multiple
    for axis in ("width", "height"):
        v = getattr(r.canvas, axis)
        if v % m:
            yield _e("canvas", f"canvas {axis} {v} is not a multiple of {m}", r.locate(f"canvas.{axis}"),
                     f"use {m * round(v / m)}; {r.model.family} latents are {m} px per cell")


def region_coverage(r: Recipe, g: Graph):
    w, h = r.canvas.width, r.canvas.height
    for c in r.characters:
        box, f = c.region.box, c.region.feather
        inner_w = box.w - f * ((box.x > 0) + (box.right < w)) / 2
        inner_h = box.h - f * ((box.y > 0) + (box.bottom < h)) / 2
        if inner_w <= 0 or inner_h <= 0:
            yield _e("region-feather", f"the {f} px feather is wider than the region ({box.w}x{box.h} px): "
                     "no part of it is fully this character's", r.locate(f"characters.{c.id}.region"),
                     "lower the feather or make the region larger")
    painted = any(c.region.kind == "mask" for c in r.characters)
    if r.characters and not r.scene and not painted and not regions.covers([c.region.box for c in r.characters], w, h):
        yield _e("coverage", "the regions leave part of the canvas to no one and there is no scene prompt "
                 "to fill it", r.locate("characters"), "add a scene: prompt or make the regions cover the canvas")


# -- warnings -------------------------------------------------------------------

def schnell_guidance(r: Recipe, g: Graph):
    if r.model.family == "flux" and not variant_of(family_of("flux"), r.model.variant).flux_guidance \
            and r.guidance is not None:
        yield _w("schnell-guidance", f"guidance {r.guidance} is ignored by schnell: it has no guidance embedding",
                 r.locate("guidance"), "remove it (guidance: null); it is not lowered")


def step_counts(r: Recipe, g: Graph):
    if r.model.family != "flux":
        return
    steps = r.sampler.steps
    if r.model.variant == "schnell" and steps > 8:
        yield _w("steps", f"schnell is distilled for 1-4 steps; {steps} steps cost {steps / 4:.1f}x for little gain",
                 r.locate("sampler.steps"), "use 4")
    if r.model.variant in ("dev", "srpo") and steps < 10:
        yield _w("steps", f"{r.model.variant} at {steps} steps is usually unfinished", r.locate("sampler.steps"),
                 "use 20-28, or the schnell preset for speed")


def negative_at_cfg1(r: Recipe, g: Graph):
    if math.isclose(r.sampler.cfg, 1.0) and r.negative:
        yield _w("negative-cfg1", "the negative prompt is never evaluated at cfg 1", r.locate("negative"),
                 "remove it, or raise cfg, which doubles the cost of each step")


def flux_cfg(r: Recipe, g: Graph):
    if r.model.family == "flux" and not math.isclose(r.sampler.cfg, 1.0) and r.sampler.cfg > 1:
        yield _w("flux-cfg", f"cfg {r.sampler.cfg} on Flux doubles every step's cost on a guidance-distilled model",
                 r.locate("sampler.cfg"), "use cfg 1 and steer with guidance")


def zero_strength(r: Recipe, g: Graph):
    for c in r.characters:
        for lora in c.loras:
            if not lora.active:
                yield _w("zero-strength", f"LoRA `{lora.file}` has strength 0: it does nothing and is left out",
                         r.locate(f"characters.{c.id}.strength"), "remove the lora or give it a strength")


def trigger_first(r: Recipe, g: Graph):
    for c in r.characters:
        if c.trigger and not c.prompt.lower().startswith(c.trigger.lower()):
            yield _w("trigger", f"trigger `{c.trigger}` is not first in the prompt", r.locate(f"characters.{c.id}.prompt"),
                     "LoRAs respond most reliably to the trigger at the start")


def overlaps(r: Recipe, g: Graph):
    chars = [c for c in r.characters if c.region.kind != "mask"]
    for i, a in enumerate(chars):
        for b in chars[i + 1:]:
            ow = min(a.region.box.right, b.region.box.right) - max(a.region.box.x, b.region.box.x)
            oh = min(a.region.box.bottom, b.region.box.bottom) - max(a.region.box.y, b.region.box.y)
            if ow > 0 and oh > 0 and min(ow, oh) > max(a.region.feather, b.region.feather):
                yield _w("overlap", f"regions of {a.id} and {b.id} overlap by {ow}x{oh} px, more than the feather: "
                         "both LoRAs act there and identities blend", r.locate(f"characters.{b.id}.region"),
                         "make the regions adjacent")


def feather_proportion(r: Recipe, g: Graph):
    default = regions.default_feather(r.canvas.width, r.canvas.height)
    for c in r.characters:
        f = c.region.feather
        if c.region.kind not in ("full", "mask") and (f > 4 * max(default, 8) or (f == 0 and len(r.characters) > 1)):
            why = "a hard seam shows" if f == 0 else f"far wider than the {default} px that suits this canvas"
            yield _w("feather", f"feather {f} px: {why}", r.locate(f"characters.{c.id}.region"),
                     f"try {default}")


def t5_on_cpu(r: Recipe, g: Graph):
    t5 = [t for t in r.model.text_encoders if "t5" in t.lower()]
    if r.model.text_encoder_device == "cpu" and t5 and not any("fp8" in t.lower() for t in t5):
        yield _w("t5-cpu", f"T5 `{t5[0]}` in 16-bit on the CPU is slow to load and encode (~30 s a prompt)",
                 r.locate("model.text_encoder_device"), "use t5xxl_fp8_e4m3fn_scaled.safetensors, or device default")


def area_is_not_separation(r: Recipe, g: Graph):
    """mask-bounds crops each region's cond to its mask's bounds: measured
    faster, but a global LoRA is merged into the model and acts on every
    crop alike (benchmarks/bleed.py: global leaks ~0.9 either way)."""
    if r.cond_area == "mask bounds" and r.lora_mode == "global" and any(c.active_loras for c in r.characters):
        yield _w("area-separation", "regions.area mask-bounds changes speed, not separation: with lora_mode global "
                 "every LoRA still acts on the whole picture", r.locate("regions.area"),
                 "for separation use lora_mode: hooks or refine")


def hires_after_refine(r: Recipe, g: Graph):
    """refine runs before hires, whose pass re-samples the whole picture with
    pass 1's model: without LoRAs on a `none` base."""
    if r.refine is not None and r.refine.base == "none" and r.hires is not None and r.hires.denoise > 0.35:
        yield _w("refine-hires", f"hires at denoise {r.hires.denoise:g} re-paints the refined characters without "
                 "their LoRAs (refine.base none): their likeness fades", r.locate("hires.denoise"),
                 "lower hires.denoise to 0.35 or less, or set refine.base: hooks")


RULES: Tuple[Rule, ...] = (gguf_with_hooks, lora_twice, sampler_names, canvas_multiple, region_coverage,
                           schnell_guidance, step_counts, negative_at_cfg1, flux_cfg, zero_strength,
                           trigger_first, overlaps, feather_proportion, t5_on_cpu, area_is_not_separation,
                           hires_after_refine)
