"""Where the time will go, in relative units, before anything runs.

1 unit = one model pass over one cond batch at 1024x1024 (Flux: 4096 image
tokens + 256 text tokens). The model, from REFERENCE.md C1-C4 (code) and F
(measurements):

- a pass costs in proportion to its tokens: latent cells per patch, plus,
  for Flux, the T5 sequence (padded to at least 256 tokens, C1), which
  dominates small canvases;
- every distinct hook group is a separate pass per model evaluation (C1);
  conds within one group are batched into that pass, so the model counts
  groups, not conds (optimistic where a batch of two costs nearly twice, as
  on a CPU: F's global and no-LoRA rows are single-cond graphs, while the
  lowering gives each region its own cond);
- cfg != 1 adds the negative conds to each group's batch: twice the pass cost
  but no extra group (a region's positive and negative share one HookGroup);
- with two or more groups each evaluation switches groups G times, and each
  switch re-patches every LoRA-touched weight (C2). A switch copies weights,
  so it does not grow with the canvas, the batch or cfg: it is a constant in
  units, the `swap`;
- heun, dpm_2, dpmpp_2s_ancestral, dpmpp_sde, seeds_2 evaluate the model
  twice a step (seeds_3 three times); dpm_2 and uni_pc take one extra sigma;
- the scheduler changes nothing per step (C4);
- a hooked LoRA is merged on the first step of every KSampler run (C2:
  hook weights are dropped after each run), a global LoRA once at load;
- text encodes are counted apart, less those the server still has cached;
- lora_mode refine's pass 2 is one KSampler per character over its crop only:
  the crop's share of the image tokens (plus the text tokens) x refine.steps,
  one group, no swaps; its LoRAs are merged once by LoraLoader (merge_global).
  Whether that beats hooks is measured, not assumed (benchmarks/bleed.py).

The constants (`UNITS`) are fitted to REFERENCE F, the only measurements we
have (ComfyUI 0.8.0 --cpu, tiny Flux-shaped models, two-character scene,
128x128 = 320 tokens = 0.0735 units a pass; ratios to the no-LoRA run):

    lowering                 s/step  measured  this model
    scene + A + B (3 groups)  4.40    4.15x     3.73x  = 3 passes + 3 swaps
    A, B folded   (2 groups)  2.40    2.26x     2.49x  = 2 passes + 2 swaps
    two global LoRAs          1.13    1.066x    1.066x = 1 pass x (1 + 2 x 0.033)
    no LoRA                   1.06    1x        1x     = 1 pass

- swap: the least-squares fit in log space of (G + G*k) to 2.26x and 4.15x
  is k = 0.25 of a 128x128 pass, i.e. 0.25 x 0.0735 = 0.018 units. (The
  measured cost grows faster than linearly in G, which no per-switch
  constant explains; k splits the difference: -10% at 3 groups, +10% at 2.
  tests/test_cost.py holds every ratio within 35% of the measured one.)
- global_lora: F measures 6.6% more per step with two global LoRAs than with
  none, though C2 says merged weights cost nothing per step: an empirical
  3.3% per LoRA per pass, small enough not to matter and kept so the ranking
  follows the measurement.
- merge_hook, merge_global: the one-off first-step merge, 18 s for two
  hooked LoRAs and 8 s for two global ones, at 1.06 s / 0.0735 units =
  14.4 s per unit: 0.62 and 0.28 units per LoRA.

Known miss: benchmarks/hook_groups.py (SD1.5 two characters, cfg 6, 256x256,
CPU) measured the global lowering (one group of four conds) at 2.70 s/step
against 2.58 for the 2-group hooks lowering; this model says 0.47x. On a CPU
a batch costs per cond, which counting groups ignores; a per-cond batch term
would fix that case but must then compare like with like against F, whose
global and no-LoRA rows have a single cond.

These are one CPU's numbers with tiny models; on a GPU the balance of a pass
against a weight copy differs, and depends on whether merged weights fit in
VRAM (C2). `recipe profile RUN_DIR...` (compiler/profile.py) fits
seconds-per-unit, the swap and the merges for one server from its run
folders and writes them to profile.json; `estimate(..., units=...)` takes
them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Dict, Mapping, Optional

from compiler.ir import regions
from compiler.ir.families import family_of
from compiler.ir.graph import Graph
from compiler.ir.nodes import GLOBAL_LORAS, HOOKED_LORAS
from compiler.ir.recipe import Recipe
from compiler.lower import refine_owner

__all__ = ["Estimate", "estimate", "hook_groups", "sampler_terms", "global_loras", "hooked_loras", "UNITS",
           "SAMPLER_NODES"]

EVALS_PER_STEP: Mapping[str, int] = MappingProxyType({"heun": 2, "heunpp2": 2, "exp_heun_2_x0": 2, "exp_heun_2_x0_sde": 2, "dpm_2": 2,
                  "dpm_2_ancestral": 2, "dpmpp_2s_ancestral": 2, "dpmpp_2s_ancestral_cfg_pp": 2,
                  "dpmpp_sde": 2, "dpmpp_sde_gpu": 2, "seeds_2": 2, "seeds_3": 3})
EXTRA_SIGMA = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})     # steps+1 sigmas
UNITS: Mapping[str, float] = MappingProxyType({
    "pass": 1.0,            # the unit itself
    "swap": 0.018,          # one hook-group switch, in units (not scaled by tokens)
    "global_lora": 0.033,   # per global LoRA, a fraction of each pass
    "merge_hook": 0.62,     # per hooked LoRA, once per KSampler run
    "merge_global": 0.28,   # per global LoRA, once per load
})
_PATCH = MappingProxyType({"flux": 16, "sd15": 8, "sdxl": 8})
_TEXT_TOKENS = MappingProxyType({"flux": 256})      # T5 is padded to at least 256 tokens (REFERENCE C1)
# The graph's sampler nodes (lower.py) and which pass each one is.
SAMPLER_NODES = MappingProxyType({"sampler": "sampling", "hires.sampler": "hires"})


@dataclass(frozen=True)
class Estimate:
    groups: int
    passes_per_step: float     # model passes per step: evaluations x (2 at cfg != 1) x groups
    swaps_per_step: float      # hook-group switches per step
    steps: int
    sampling: float            # units, first pass
    hires: float               # units, second pass
    merge: float               # units, one-off LoRA merges
    encodes: int               # text encodes to run
    encodes_cached: int        # of those, already cached on the server
    units_per_step: float = 0.0        # first pass, all included
    hires_units_per_step: float = 0.0
    refine: float = 0.0                # units, lora_mode refine's pass 2, every character

    @property
    def total(self) -> float:
        return self.sampling + self.hires + self.refine + self.merge


def hook_groups(graph: Graph) -> int:
    """Distinct hook groups among the sampler's conds, `None` counting as one."""
    hooked = {n.input("hooks").node for n in graph if n.class_type.startswith("PairConditioningSet")
              and n.input("hooks") is not None}
    unhooked = any(n.class_type.startswith("PairConditioningSet") and n.input("hooks") is None for n in graph)
    base = "scene.text" in graph
    return max(1, len(hooked) + (1 if (unhooked or base) else 0))


def _tokens(recipe: Recipe, scale: float = 1.0, size: Optional[tuple] = None) -> float:
    """Tokens of one pass (batch included), relative to one 1024x1024 image;
    `size` (w, h) for a crop instead of the canvas."""
    fam = recipe.model.family
    p, text = _PATCH[fam], _TEXT_TOKENS.get(fam, 0)
    w, h = size or (recipe.canvas.width, recipe.canvas.height)
    cells = math.ceil(w * scale / p) * math.ceil(h * scale / p)
    return (cells + text) / ((1024 // p) ** 2 + text) * recipe.output.batch_size


def global_loras(graph: Graph, owner: Optional[str] = None) -> int:
    """LoRAs merged into a model once, at load: pass 1's, or with `owner`
    (`char.<id>`, see lower.refine_owner) those of that character's refine pass."""
    return sum(1 for n in graph if n.class_type in GLOBAL_LORAS and refine_owner(n.id) == owner)


def _refine_terms(recipe: Recipe, graph: Graph, passes_per_group: float, lora_fraction: float) -> Dict[str, tuple]:
    """Per refine sampler: its crop's tokens, one group, no swaps."""
    out = {}
    for n in graph:
        if n.class_type == "KSampler" and refine_owner(n.id) is not None:
            crop = graph[n.input("latent_image").node]
            size = (crop.input("width"), crop.input("height"))
            lora = 1 + lora_fraction * global_loras(graph, refine_owner(n.id))
            out[n.id] = (passes_per_group * _tokens(recipe, size=size) * lora, 0)
    return out


def _step_tokens(recipe: Recipe, graph: Graph, groups: int, scale: float = 1.0) -> float:
    """Tokens of one model evaluation's passes (cfg aside): every group over
    the canvas; with `regions.area: mask-bounds` each region's cond over its
    mask's bounding box instead (conds of different areas are not batched
    together, so each is its own, smaller pass; REFERENCE F measured the gain)."""
    if recipe.cond_area != "mask bounds":
        return groups * _tokens(recipe, scale)
    w, h = recipe.canvas.width, recipe.canvas.height
    crops = [regions.feathered_extent(c.region.box, c.region.feather, w, h)[0] for c in recipe.characters]
    unmasked = 1 if "scene.text" in graph else 0
    return sum(_tokens(recipe, scale, (b.w, b.h)) for b in crops) + unmasked * _tokens(recipe, scale)


def hooked_loras(graph: Graph) -> int:
    """LoRAs applied as hooks: merged on the first step of every KSampler run."""
    return sum(1 for n in graph if n.class_type in HOOKED_LORAS)


def sampler_terms(recipe: Recipe, graph: Graph, units: Optional[Mapping[str, float]] = None) -> Dict[str, tuple]:
    """Per sampler node id: (pass units per step, swaps per step), so that
    units/step = pass units + swaps x UNITS["swap"]. This linear split is
    what `recipe profile` fits seconds-per-unit and the swap against."""
    groups = hook_groups(graph)
    evals = EVALS_PER_STEP.get(recipe.sampler.name, 1)
    cfg = 1 if math.isclose(recipe.sampler.cfg, 1.0) else 2
    swaps = evals * (groups if groups >= 2 else 0)
    per_lora = {**UNITS, **(units or {})}["global_lora"]
    lora = 1 + per_lora * global_loras(graph)
    terms = {"sampler": (evals * cfg * _step_tokens(recipe, graph, groups) * lora, swaps)}
    if recipe.hires and "hires.sampler" in graph:
        terms["hires.sampler"] = (evals * cfg * _step_tokens(recipe, graph, groups, recipe.hires.scale) * lora, swaps)
    terms.update(_refine_terms(recipe, graph, evals * cfg, per_lora))
    return terms


def estimate(recipe: Recipe, graph: Graph, previous: Optional[Graph] = None,
             units: Optional[Mapping[str, float]] = None) -> Estimate:
    """`units` overrides UNITS (e.g. a profile.json's fitted values)."""
    u = {**UNITS, **(units or {})}
    groups = hook_groups(graph)
    terms = sampler_terms(recipe, graph, u)
    per_step = {k: (p * u["pass"] + w * u["swap"]) for k, (p, w) in terms.items()}
    steps = recipe.sampler.steps + (1 if recipe.sampler.name in EXTRA_SIGMA else 0)
    sampling = steps * per_step["sampler"]
    hires = recipe.hires.steps * per_step["hires.sampler"] if "hires.sampler" in per_step else 0.0
    refine = sum(v * recipe.refine.steps for k, v in per_step.items() if refine_owner(k) is not None) if recipe.refine else 0.0
    runs = 2 if "hires.sampler" in per_step else 1
    all_global = sum(1 for n in graph if n.class_type in GLOBAL_LORAS)
    merge = hooked_loras(graph) * u["merge_hook"] * runs + all_global * u["merge_global"]
    encodes = [n.id for n in graph if n.class_type == "CLIPTextEncode"]
    cached = 0
    if previous is not None:
        old = set(previous.signatures().values())
        sigs = graph.signatures()
        cached = sum(1 for e in encodes if sigs[e] in old)
    evals = EVALS_PER_STEP.get(recipe.sampler.name, 1)
    cfg = 1 if math.isclose(recipe.sampler.cfg, 1.0) else 2
    return Estimate(groups, evals * cfg * groups, terms["sampler"][1], steps, sampling, hires, merge,
                    len(encodes), cached, per_step["sampler"], per_step.get("hires.sampler", 0.0), refine)


def describe(recipe: Recipe, est: Estimate) -> Dict[str, str]:
    fam = family_of(recipe.model.family)
    cfg = "cfg 1 (negative skipped)" if math.isclose(recipe.sampler.cfg, 1.0) else f"cfg {recipe.sampler.cfg} (x2)"
    swaps = f" + {est.swaps_per_step:g} weight swaps" if est.swaps_per_step else ""
    return {
        "text encodes": f"{est.encodes - est.encodes_cached} to run ({est.encodes_cached} cached on the server)",
        "hook groups": f"{est.groups} -> {est.passes_per_step:g} passes{swaps} per step "
                       f"({recipe.sampler.name}, {cfg})",
        "image": f"{recipe.canvas.width}x{recipe.canvas.height} = {_tokens(recipe):.2f}x the tokens of "
                 f"1024x1024 ({fam.name})",
        "sampling": f"{est.steps} steps x {est.units_per_step:.2f} = {est.sampling:.1f} units",
        "hires": (f"{recipe.hires.steps} steps at {recipe.hires.scale}x = {est.hires:.1f} units"
                  if recipe.hires else "none"),
        **({"refine": f"{sum(1 for c in recipe.characters if c.active_loras)} repaints x {recipe.refine.steps} "
                      f"steps over their crops = {est.refine:.1f} units"} if recipe.refine else {}),
        "lora merge": f"{est.merge:.1f} units, once per run",
        "total": f"{est.total:.1f} units",
    }
