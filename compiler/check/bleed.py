"""Separation against cost: for the recipe's lowering and its alternatives,
the cost estimate beside the bleed `benchmarks/bleed.py` measured for the
family (what `recipe check --cost` prints under its estimate).

The measured figures are data, not a model: A's LoRA at strength 15, B without
one, split left/right, the tiny random-weight models of
../shared/tools/make_tiny_models.py on a real ComfyUI 0.8.0 (CPU), one seed.
Leak = mean |Δ| in B's region beyond the feather ÷ A's mean |Δ| in its own,
on the final latent; share = A's region's part of all the latent change. On
real weights attention couples regions more; `recipe probe` measures a
user's own recipe and LoRAs.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

from compiler.errors import RecipeError
from compiler.ir.recipe import Recipe

__all__ = ["LOWERINGS", "MEASURED", "MEASURED_ON", "lowering_of", "separation_rows"]

# The lowerings a recipe can be compiled to, as --set overrides.
LOWERINGS: Mapping[str, Tuple[str, ...]] = MappingProxyType({
    "global": ("lora_mode=global",),
    "hooks": ("lora_mode=hooks", "regions.area=default"),
    "hooks+mask-bounds": ("lora_mode=hooks", "regions.area=mask-bounds"),
    "refine": ("lora_mode=refine", "refine.base=none"),
    "refine+hooks": ("lora_mode=refine", "refine.base=hooks"),
})

MEASURED_ON = "benchmarks/bleed.py, ComfyUI 0.8.0 --cpu, tiny models, 2026-12-01"

# family -> lowering -> (latent leak, latent share, PNG leak, A's in-region latent effect),
# copied from `python benchmarks/bleed.py --server 127.0.0.1:8188 --json ...` (SD1.5 256², 8 steps,
# cfg 6; Flux dev 128², 4 steps; strength 15). Leak is 0.0 where not one latent value changed.
MEASURED: Mapping[str, Mapping[str, Tuple[float, float, float, float]]] = MappingProxyType({
    "sd15": MappingProxyType({
        "global": (0.908, 0.525, 1.45, 0.804),
        "hooks": (0.00323, 0.989, 0.36, 0.878),
        "hooks+mask-bounds": (4.18e-05, 0.996, 0.35, 0.88),
        "refine": (0.0, 0.992, 0.36, 0.026),
        "refine+hooks": (0.00319, 0.989, 0.36, 0.89),
    }),
    "flux": MappingProxyType({
        "global": (0.912, 0.524, 0.89, 1.53),
        "hooks": (0.0538, 0.940, 0.29, 1.52),
        "hooks+mask-bounds": (0.00448, 0.979, 0.28, 1.54),
        "refine": (0.0, 0.985, 0.34, 0.984),
        "refine+hooks": (0.0573, 0.931, 0.34, 1.43),
    }),
})

# SDXL is not measured: its UNet is SD1.5's kind (cross-attention per region),
# so SD1.5's figures are shown, labelled as such.
_STAND_IN = MappingProxyType({"sdxl": "sd15"})


def lowering_of(recipe: Recipe) -> str:
    """The LOWERINGS name of what this recipe compiles to."""
    if recipe.lora_mode == "refine":
        return "refine+hooks" if recipe.refine and recipe.refine.base == "hooks" else "refine"
    if recipe.lora_mode == "hooks" and recipe.cond_area == "mask bounds":
        return "hooks+mask-bounds"
    return recipe.lora_mode


def _measured(family: str) -> Tuple[Optional[Mapping[str, Tuple[float, float, float]]], str]:
    fam = family if family in MEASURED else _STAND_IN.get(family, "")
    return MEASURED.get(fam), fam


def _leak(value: float) -> str:
    return "0 (none)" if value == 0 else (f"{value:.1e}" if value < 0.001 else f"{value:.3f}")


def separation_rows(recipe: Recipe, cost_of: Callable[[Sequence[str]], float],
                    this_cost: float) -> Tuple[List[Tuple[str, ...]], str]:
    """(lowering, cost vs this recipe, latent leak, share, PNG leak, in-region
    effect vs hooks) per
    lowering, and a note on where the figures come from. `cost_of(overrides)`
    compiles the recipe with those overrides and returns its estimated units;
    a lowering that does not apply to this recipe (it raises RecipeError) is
    shown as such."""
    measured, fam = _measured(recipe.model.family)
    mine = lowering_of(recipe)
    rows = []
    for name, overrides in LOWERINGS.items():
        try:
            cost = f"{cost_of(overrides) / this_cost:.2f}x" if name != mine else "1.00x"
        except RecipeError as exc:
            cost = f"does not apply: {exc.lines()[0]}"
        leak, share, png, effect = measured.get(name, (None,) * 4) if measured else (None,) * 4
        hooks_effect = measured["hooks"][3] if measured else None
        rows.append((name + (" (this recipe)" if name == mine else ""), cost,
                     "—" if leak is None else _leak(leak), "—" if share is None else f"{100 * share:.1f}%",
                     "—" if png is None else f"{png:.2f}",
                     "—" if effect is None else f"{effect / hooks_effect:.2f}x"))
    if not measured:
        note = f"bleed not measured for {recipe.model.family}"
    else:
        note = f"bleed measured on {fam}" + (f" (standing in for {recipe.model.family})"
                                             if fam != recipe.model.family else "") + f": {MEASURED_ON}"
    return rows, note
