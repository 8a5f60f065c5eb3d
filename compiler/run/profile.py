"""`recipe profile RUN_DIR...`: what the runs measured beside what the cost
model estimated, and the model's constants fitted to one server.

Each run folder has what it needs: run.json (`timings`: per sampler node,
`s_per_step` and `first_step_s`), graph.api.json (the graph that ran) and
recipe.resolved.yaml. The estimate is recomputed from those two
(compiler.cost), split per sampler node into pass units P and hook-group
switches W per step, so that

    measured s/step  ~  spu x (P + swap x W)  =  a x P + c x W

with spu the server's seconds per unit (one model pass at 1024x1024) and
swap = c / a, in units. The fit is least squares on relative errors (runs of
very different sizes weigh alike):

- one run: spu is its measured / estimated ratio; nothing else is fitted;
- a and c together only when the runs have at least two different hook-group
  counts *and* their P and W are not proportional (1 group has no switches;
  2 and 3 groups at one size differ only in scale and cannot separate a pass
  from a switch); otherwise the swap keeps its default (cost.UNITS);
- a negative c is read as "no measurable switch cost": swap 0, refit a;
- with three runs or more, one run that is off by more than half while the
  others then agree within a quarter is left out and named (a run on a busy
  server, a cold disk): robust to one bad run, never to several.

The one-off merges come from each sampler's first step: first_step_s minus
s_per_step, per hooked LoRA (every KSampler run) or per global LoRA (the
main sampler only), in units of the fitted spu. That excess also holds
moving the model to the device, so read merge constants as upper bounds.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from compiler.check.cost import UNITS, global_loras, hook_groups, hooked_loras, sampler_terms
from compiler.errors import Location, RecipeError
from compiler.ir.graph import Graph

__all__ = ["Observation", "Fit", "observe", "fit", "report", "profile"]

_WORST = 0.5      # a run this far off (relative) may be left out ...
_AGREE = 0.25     # ... if the others then all agree within this


@dataclass(frozen=True)
class Observation:
    """One sampler node of one run: measured seconds per step beside its estimate."""
    run: Path
    recipe: str
    node: str                  # "sampler" | "hires.sampler"
    groups: int
    passes: float              # P: pass units per step
    swaps: float               # W: hook-group switches per step
    seconds: float             # measured s/step
    steps: int                 # progress ticks seen
    first_step: Optional[float]
    hooked: int                # hooked LoRAs (merged on every KSampler run)
    global_loras: int          # global LoRAs (merged once, at load)
    server: str
    describe: str              # family, canvas, sampler, cfg: for the report

    def units(self, swap: float) -> float:
        return self.passes + swap * self.swaps


@dataclass
class Fit:
    seconds_per_unit: float
    units: Dict[str, float]
    fitted: List[str]
    left_out: List[Path] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def predict(self, obs: Observation) -> float:
        return self.seconds_per_unit * obs.units(self.units["swap"])


# -- reading run folders ------------------------------------------------------------------

def observe(folder: Path) -> Tuple[List[Observation], str]:
    """A run folder's observations, or ([], why not)."""
    from compiler.resolve.access import ANYWHERE
    from compiler.resolve.passes import resolve_file
    from compiler.run.folder import RunRecord
    folder = Path(folder)
    record = RunRecord.load(folder)
    rows = [t for t in record.data.get("timings") or [] if isinstance(t, dict) and t.get("s_per_step")]
    if not rows:
        return [], f"no per-step sampler timings (status {record.data.get('status', '?')})"
    try:
        graph = Graph.from_api(json.loads((folder / "graph.api.json").read_text("utf-8")))
        recipe = resolve_file(str(folder / "recipe.resolved.yaml"), allow=ANYWHERE)   # ours, never uploaded
    except (OSError, ValueError, KeyError) as exc:
        return [], f"cannot read its graph or recipe: {exc}"
    except RecipeError as exc:
        return [], f"its recipe no longer resolves: {exc}"
    terms = sampler_terms(recipe, graph)
    groups = hook_groups(graph)
    hooked, global_count = hooked_loras(graph), global_loras(graph)
    s = recipe.sampler
    what = (f"{recipe.model.family} {recipe.canvas.width}x{recipe.canvas.height}, {s.name}, cfg {s.cfg:g}, "
            f"{groups} hook group{'s' if groups != 1 else ''}")
    server = str((record.data.get("client") or {}).get("server", "?"))
    out = []
    for row in rows:
        node = row.get("node")
        if node not in terms:
            continue
        passes, swaps = terms[node]
        out.append(Observation(folder, recipe.name, node, groups, passes, swaps, float(row["s_per_step"]),
                               int(row.get("steps", 0)), row.get("first_step_s"), hooked, global_count, server,
                               what))
    return out, "" if out else "its timings name no sampler node of its graph"


# -- fitting ----------------------------------------------------------------------------------

def _fit_linear(obs: Sequence[Observation], swap: float, free_swap: bool) -> Tuple[float, float, bool]:
    """(a, swap, swap was fitted) minimising relative squared error."""
    if free_swap:
        x1 = [o.passes / o.seconds for o in obs]
        x2 = [o.swaps / o.seconds for o in obs]
        s11, s12, s22 = sum(v * v for v in x1), sum(u * v for u, v in zip(x1, x2)), sum(v * v for v in x2)
        det = s11 * s22 - s12 * s12
        if s11 > 0 and s22 > 0 and det > 1e-9 * s11 * s22:
            b1, b2 = sum(x1), sum(x2)
            a, c = (b1 * s22 - b2 * s12) / det, (b2 * s11 - b1 * s12) / det
            if a > 0 and c >= 0:
                return a, c / a, True
            if a > 0:           # switches measurably free: swap 0
                return _one(obs, 0.0), 0.0, True
    return _one(obs, swap), swap, False


def _one(obs: Sequence[Observation], swap: float) -> float:
    x = [o.units(swap) / o.seconds for o in obs]
    return sum(x) / sum(v * v for v in x)


def _separable(obs: Sequence[Observation]) -> bool:
    return len({o.groups for o in obs}) >= 2


def _errors(obs: Sequence[Observation], a: float, swap: float) -> List[float]:
    return [a * o.units(swap) / o.seconds - 1 for o in obs]


def fit(observations: Sequence[Observation], defaults: Optional[Dict[str, float]] = None) -> Fit:
    units = {**UNITS, **(defaults or {})}
    obs = list(observations)
    if not obs:
        raise ValueError("nothing to fit")
    notes: List[str] = []
    a, swap, swap_fitted = _fit_linear(obs, units["swap"], _separable(obs))
    left_out: List[Path] = []
    runs = sorted({o.run for o in obs}, key=str)
    if len(runs) >= 3 and max(map(abs, _errors(obs, a, swap))) > _WORST:
        best = None
        for run in runs:
            rest = [o for o in obs if o.run != run]
            ra, rswap, rfit = _fit_linear(rest, units["swap"], _separable(rest))
            if len({o.run for o in rest}) <= 1 + rfit:     # as many runs as constants: no check left
                continue
            rest_worst = max(map(abs, _errors(rest, ra, rswap)))
            out_worst = max(abs(e) for e in _errors([o for o in obs if o.run == run], ra, rswap))
            if rest_worst <= _AGREE and out_worst > _WORST and (best is None or rest_worst < best[0]):
                best = (rest_worst, run, ra, rswap, rfit)
        if best is not None:
            _, run, a, swap, swap_fitted = best
            left_out.append(run)
            notes.append(f"left out {run}: it is off by more than {_WORST:.0%} where the others agree "
                         f"within {_AGREE:.0%}")
            obs = [o for o in obs if o.run != run]
    worst = max(obs, key=lambda o: abs(a * o.units(swap) / o.seconds - 1))
    if abs(a * worst.units(swap) / worst.seconds - 1) > _WORST:
        notes.append(f"the model fits these runs poorly ({worst.run} {worst.node} is off by "
                     f"{a * worst.units(swap) / worst.seconds - 1:+.0%}): use the constants with care")
    fitted = ["seconds_per_unit"]
    units["swap"] = swap
    if swap_fitted:
        fitted.append("swap")
    elif not _separable(obs):
        groups = sorted({o.groups for o in obs})
        notes.append(f"swap not fitted: every run has {groups[0]} hook group{'s' if groups[0] != 1 else ''} "
                     f"(it needs runs with different hook-group counts)")
    else:
        notes.append("swap not fitted: these runs' passes and switches grow together "
                     "(add a run with 1 hook group, e.g. lora_mode: global)")
    for key, pick in (("merge_hook", lambda o: o.hooked if o.hooked and not o.global_loras else 0),
                      ("merge_global", lambda o: o.global_loras if o.node == "sampler" and not o.hooked else 0)):
        samples = [(o.first_step - o.seconds) / (a * pick(o)) for o in obs
                   if pick(o) and o.first_step is not None]
        if samples:
            units[key] = max(0.0, sum(samples) / len(samples))
            fitted.append(key)
    servers = sorted({o.server for o in obs})
    if len(servers) > 1:
        notes.append(f"these runs come from {len(servers)} servers ({', '.join(servers)}): "
                     "the fit assumes one")
    return Fit(a, units, fitted, left_out, notes)


# -- the report ---------------------------------------------------------------------------------

def report(observations: Sequence[Observation], result: Fit, skipped: Dict[Path, str]) -> str:
    lines: List[str] = []
    by_run: Dict[Path, List[Observation]] = {}
    for o in observations:
        by_run.setdefault(o.run, []).append(o)
    head = f"    {'node':<14} {'measured':>12}  {'estimated':>15}  {'predicted':>12}  {'error':>6}"
    for run, obs in by_run.items():
        tag = "  (left out of the fit)" if run in result.left_out else ""
        lines.append(f"{run}: {obs[0].recipe}, {obs[0].describe}{tag}")
        lines.append(head)
        for o in obs:
            predicted = result.predict(o)
            lines.append(f"    {o.node:<14} {o.seconds:>7.3f} s/step  {o.units(result.units['swap']):>9.4f} u/step"
                         f"  {predicted:>7.3f} s/step  {predicted / o.seconds - 1:>+6.0%}")
        for o in obs:
            if o.first_step is not None:
                lines.append(f"    {o.node} first step {o.first_step:.3f} s: {o.first_step - o.seconds:+.3f} s "
                             f"over a step (LoRA merge, model to device)")
    for run, why in skipped.items():
        lines.append(f"{run}: skipped, {why}")
    n = len(by_run) - len(result.left_out)
    lines.append(f"fitted over {n} run{'s' if n != 1 else ''} "
                 f"(1 unit = one model pass at 1024x1024; u = units):")
    spu = result.seconds_per_unit
    lines.append(f"    {'seconds_per_unit':<16} {spu:.4g} s")
    for key in ("swap", "global_lora", "merge_hook", "merge_global"):
        value = result.units[key]
        how = "fitted" if key in result.fitted else "default"
        extra = "" if key == "global_lora" else f" = {value * spu:.4g} s"
        lines.append(f"    {key:<16} {value:.4g} u{extra} ({how})")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def profile(run_dirs: Sequence[str], save: Optional[str] = None) -> Tuple[Fit, str, Path]:
    """Read, fit, write profile.json; returns (fit, report text, where it was written)."""
    from compiler.files import write_atomic
    observations: List[Observation] = []
    skipped: Dict[Path, str] = {}
    for d in run_dirs:
        obs, why = observe(Path(d))
        observations.extend(obs)
        if not obs:
            skipped[Path(d)] = why
    if not observations:
        raise RecipeError("no run has per-step sampler timings to fit (" +
                          "; ".join(f"{k}: {v}" for k, v in skipped.items()) + ")",
                          Location(str(run_dirs[0])), "profile successful runs of two steps or more")
    result = fit(observations)
    text = report(observations, result, skipped)
    target = Path(save) if save else Path(run_dirs[0]).resolve().parent / "profile.json"
    from compiler.run.folder import RunRecord
    first = RunRecord.read(observations[0].run)
    data = {
        "server": observations[0].server,
        "servers": sorted({o.server for o in observations}),
        "comfyui_version": first.get("comfyui_version"),
        "devices": first.get("devices"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds_per_unit": result.seconds_per_unit,
        "units": result.units,
        "fitted": result.fitted,
        "notes": result.notes,
        "runs": [{"run": str(o.run), "recipe": o.recipe, "node": o.node, "hook_groups": o.groups,
                  "measured_s_per_step": o.seconds, "estimated_units_per_step": o.units(result.units["swap"]),
                  "predicted_s_per_step": result.predict(o), "left_out": o.run in result.left_out}
                 for o in observations],
        "skipped": {str(k): v for k, v in skipped.items()},
    }
    write_atomic(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return result, text, target

