"""The probe's renders: a baseline with every LoRA at 0, then one per character
with only that character's LoRA(s) on. Each is the user's recipe with its
strengths overridden through `--set`, so every other value (and every error's
location) still comes from the user's file; each is lowered with PROBE, which
keeps the zero-strength LoRA nodes, so all renders have one structure and
differ only in strength values.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from compiler.errors import Location, LowerError, ProtocolError, RecipeError
from compiler.ir.graph import Graph
from compiler.ir.recipe import Character, Recipe

__all__ = ["Render", "Rendered", "plan", "strength_overrides", "compile_render", "run_renders", "probe_folder"]

STRENGTH_RANGE = (-20.0, 20.0)   # the schema's bounds on a LoRA strength


@dataclass(frozen=True)
class Render:
    name: str                    # the run folder's name: baseline | char-<id>
    character: Optional[str]     # whose LoRA is on; None for the baseline
    overrides: Tuple[str, ...]   # --set items, after the user's own


@dataclass(frozen=True)
class Rendered:
    render: Render
    recipe: Recipe
    graph: Graph
    folder: Path
    outputs: Tuple[dict, ...]    # run.json `outputs`: {file, kind, node, ...}

    def files(self, kind: str) -> List[Path]:
        return [self.folder / o["file"] for o in self.outputs if o.get("kind") == kind]


def _pairs(c: Character, on: bool, strength: Optional[float]) -> List[Tuple[float, float]]:
    if not on:
        return [(0.0, 0.0)] * len(c.loras)
    if strength is not None:
        return [(strength, strength)] * len(c.loras)
    return [(lora.strength_model, lora.strength_clip) for lora in c.loras]


def strength_overrides(recipe: Recipe, on: Optional[str], strength: Optional[float] = None) -> List[str]:
    """--set items that put every LoRA at 0 except `on`'s, which keeps its
    strengths (or takes `strength` for model and clip). A stack is rewritten
    whole: --set cannot reach into a list, and an item's own strength would
    win over the character's."""
    out = []
    for c in recipe.characters:
        if not c.loras:
            continue
        pairs = _pairs(c, c.id == on, strength)
        if isinstance(recipe.document.get("characters", {}).get(c.id, {}).get("lora"), list):
            items = [{"file": lora.file, "strength": {"model": m, "clip": k}} for lora, (m, k) in zip(c.loras, pairs)]
            out.append(f"characters.{c.id}.lora={json.dumps(items)}")
        else:
            out.append(f"characters.{c.id}.strength={json.dumps({'model': pairs[0][0], 'clip': pairs[0][1]})}")
    return out


def plan(recipe: Recipe, steps: Optional[int] = None, strength: Optional[float] = None) -> List[Render]:
    """The baseline, then one render per character that has a LoRA."""
    if steps is not None and steps < 1:
        raise RecipeError(f"{steps} steps: a render needs at least 1", Location("--steps"))
    if strength is not None and not STRENGTH_RANGE[0] <= strength <= STRENGTH_RANGE[1]:
        raise RecipeError(f"{strength:g} is out of range: LoRA strengths go from "
                          f"{STRENGTH_RANGE[0]:g} to {STRENGTH_RANGE[1]:g}", Location("--strength"))
    chars = [c for c in recipe.characters if c.loras]
    if not chars:
        raise RecipeError("no character has a LoRA, so the probe has nothing to measure "
                          "(give a character a `lora:`)", recipe.locate("characters"))
    common = (f"sampler.steps={steps}",) if steps is not None else ()
    return [Render("baseline", None, common + tuple(strength_overrides(recipe, None)))] + \
        [Render(f"char-{c.id}", c.id, common + tuple(strength_overrides(recipe, c.id, strength))) for c in chars]


def compile_render(path, overrides: Sequence[str], presets: Sequence[str],
                   catalogue=None) -> Tuple[Recipe, Graph]:
    """The pipeline's resolve (of a path, or of what pipeline.load gave), lowered
    with PROBE (zero-strength LoRA nodes kept, the final latent saved). The advisor runs once, on the recipe as
    the user wrote it (cli/probe.py), not on each zero-strength render."""
    from compiler import pipeline
    from compiler.check.names import match_names
    from compiler.lower import PROBE, lower
    recipe = pipeline.resolve(path, overrides, presets)
    if catalogue is not None:   # model names as the user wrote them, completed as a run completes them
        recipe, _ = match_names(recipe, catalogue)
    return recipe, lower(recipe, PROBE)


def probe_folder(out: Path, recipe: Recipe) -> Path:
    """out/<recipe>/probe-<stamp>-<6 hex>/, new: the renders' run folders go inside."""
    folder = Path(out) / recipe.name / f"probe-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def _same_structure(first: Rendered, graph: Graph, name: str) -> None:
    """Strength values are the only difference the measurement may see."""
    a = {n.id: n.class_type for n in first.graph}
    b = {n.id: n.class_type for n in graph}
    if a != b:
        extra = sorted(set(a.items()) ^ set(b.items()))
        raise LowerError(f"the probe's {name} render has another graph than its baseline "
                         f"({', '.join(f'{i} ({c})' for i, c in extra[:4])}): a lowering bug, please report it",
                         Location(first.recipe.source))


def run_renders(path: str, overrides: Sequence[str], presets: Sequence[str], renders: Sequence[Render],
                out: Path, run: Callable[[Recipe, Graph, Path], dict],
                say: Callable[[str], None], catalogue=None) -> Tuple[Path, List[Rendered]]:
    """Compile every render first (a bad override fails before any folder is
    made or server time spent), then run each into <probe folder>/<name> with
    `run(recipe, graph, run_folder) -> run.json data`."""
    compiled = [compile_render(path, [*overrides, *r.overrides], presets, catalogue) for r in renders]
    folder = probe_folder(out, compiled[0][0])
    done: List[Rendered] = []
    for i, (r, (recipe, graph)) in enumerate(zip(renders, compiled), 1):
        if done:
            _same_structure(done[0], graph, r.name)
        say(f"probe {i}/{len(renders)}: {r.name} — " +
            (f"only {r.character}'s LoRA on" if r.character else "every LoRA at 0"))
        data = run(recipe, graph, folder / r.name)
        rendered = Rendered(r, recipe, graph, folder / r.name, tuple(data.get("outputs") or ()))
        if not rendered.files("latent") or not rendered.files("image"):
            raise ProtocolError(f"the {r.name} render saved no " +
                                ("latent (SaveLatent output)" if not rendered.files("latent") else "image"))
        done.append(rendered)
    return folder, done
