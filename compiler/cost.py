"""Where the time will go, in relative units, before anything runs.

The model (REFERENCE.md C1, C4, F):
- a forward pass costs in proportion to the image tokens (latent cells per
  patch); 1 unit = one pass at 1024x1024;
- each distinct hook group is a separate pass per model evaluation, and with
  two or more groups every switch re-patches the LoRA weights (measured on
  the transcript server: 3 groups 4.4 s/step, 2 groups 2.4, global LoRAs
  1.13, no LoRA 1.06);
- cfg != 1 evaluates the negative too: twice the passes;
- heun, dpm_2, dpmpp_2s_ancestral, dpmpp_sde, seeds_2 evaluate ~2x a step;
- the scheduler changes nothing per step;
- text encodes are counted apart, less those the server still has cached.
The constants are calibrated per server by `recipe profile`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

from .families import family_of
from .graph import Graph
from .recipe import Recipe

__all__ = ["Estimate", "estimate", "hook_groups", "UNITS"]

EVALS_PER_STEP = {"heun": 2, "heunpp2": 2, "exp_heun_2_x0": 2, "exp_heun_2_x0_sde": 2, "dpm_2": 2,
                  "dpm_2_ancestral": 2, "dpmpp_2s_ancestral": 2, "dpmpp_2s_ancestral_cfg_pp": 2,
                  "dpmpp_sde": 2, "dpmpp_sde_gpu": 2, "seeds_2": 2, "seeds_3": 3}
EXTRA_SIGMA = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}     # steps+1 sigmas
# swap: weight re-patch per group switch, relative to a pass (fit from REFERENCE F);
# merge: the one-off LoRA merge on the first step, in passes (18 s hooks, 8 s global).
UNITS = {"pass": 1.0, "swap": 0.25, "merge_hooks": 17.0, "merge_global": 7.5}
_REF_TOKENS = {"flux": (1024 // 16) ** 2, "sd15": (1024 // 8) ** 2, "sdxl": (1024 // 8) ** 2}
_PATCH = {"flux": 16, "sd15": 8, "sdxl": 8}


@dataclass(frozen=True)
class Estimate:
    groups: int
    passes_per_step: float
    steps: int
    sampling: float            # units, first pass
    hires: float               # units, second pass
    merge: float               # units, one-off LoRA merge
    encodes: int               # text encodes to run
    encodes_cached: int        # of those, already cached on the server

    @property
    def total(self) -> float:
        return self.sampling + self.hires + self.merge


def hook_groups(graph: Graph) -> int:
    """Distinct hook groups among the sampler's conds, `None` counting as one."""
    hooked = {n.input("hooks").node for n in graph if n.class_type.startswith("PairConditioningSet")
              and n.input("hooks") is not None}
    unhooked = any(n.class_type.startswith("PairConditioningSet") and n.input("hooks") is None for n in graph)
    base = "scene.text" in graph
    return max(1, len(hooked) + (1 if (unhooked or base) else 0))


def _tokens(recipe: Recipe, scale: float = 1.0) -> float:
    fam = recipe.model.family
    p = _PATCH[fam]
    cells = math.ceil(recipe.canvas.width * scale / p) * math.ceil(recipe.canvas.height * scale / p)
    return cells / _REF_TOKENS[fam] * recipe.output.batch_size


def _per_step(recipe: Recipe, groups: int) -> float:
    evals = EVALS_PER_STEP.get(recipe.sampler.name, 1)
    cfg = 1 if math.isclose(recipe.sampler.cfg, 1.0) else 2
    swaps = groups if groups >= 2 else 0
    return evals * cfg * (groups * UNITS["pass"] + swaps * UNITS["swap"])


def estimate(recipe: Recipe, graph: Graph, previous: Optional[Graph] = None) -> Estimate:
    groups = hook_groups(graph)
    per_step = _per_step(recipe, groups)
    steps = recipe.sampler.steps + (1 if recipe.sampler.name in EXTRA_SIGMA else 0)
    sampling = steps * per_step * _tokens(recipe)
    hires = 0.0
    if recipe.hires:
        hires = recipe.hires.steps * per_step * _tokens(recipe, recipe.hires.scale)
    merge = 0.0
    if any(n.class_type == "CreateHookLora" for n in graph):
        merge = UNITS["merge_hooks"]
    elif any(n.class_type == "LoraLoader" for n in graph):
        merge = UNITS["merge_global"]
    encodes = [n.id for n in graph if n.class_type == "CLIPTextEncode"]
    cached = 0
    if previous is not None:
        old = set(previous.signatures().values())
        sigs = graph.signatures()
        cached = sum(1 for e in encodes if sigs[e] in old)
    return Estimate(groups, per_step, steps, sampling, hires, merge, len(encodes), cached)


def describe(recipe: Recipe, est: Estimate) -> Dict[str, str]:
    fam = family_of(recipe.model.family)
    cfg = "cfg 1 (negative skipped)" if math.isclose(recipe.sampler.cfg, 1.0) else f"cfg {recipe.sampler.cfg} (x2)"
    return {
        "text encodes": f"{est.encodes - est.encodes_cached} to run ({est.encodes_cached} cached on the server)",
        "hook groups": f"{est.groups} -> {est.passes_per_step:.2f} pass units/step ({recipe.sampler.name}, {cfg})",
        "image": f"{recipe.canvas.width}x{recipe.canvas.height} = {_tokens(recipe):.2f}x the tokens of 1024x1024 ({fam.name})",
        "sampling": f"{est.steps} steps = {est.sampling:.1f} units",
        "hires": f"{recipe.hires.steps} steps at {recipe.hires.scale}x = {est.hires:.1f} units" if recipe.hires else "none",
        "lora merge": f"{est.merge:.1f} units, once per run",
        "total": f"{est.total:.1f} units",
    }
