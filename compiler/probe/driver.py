"""`recipe probe`, end to end: plan the renders, run them, measure, write
probe.json and probe.png into the probe folder."""
from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from compiler.comfy.client import ComfyClient
from compiler.files import write_atomic
from compiler.ir.graph import Graph
from compiler.lower import PROBE
from compiler.probe.heatmap import Panel, render_sheet
from compiler.probe.metrics import ONE, ZERO
from compiler.probe.renders import compile_render, plan, run_renders
from compiler.probe.report import Analysis, analyse, table, title
from compiler.run.progress import Reporter, make_reporter
from compiler.run.catalogues import CatalogueProvider
from compiler.run.folder import prepare
from compiler.run.steps import run_prepared

__all__ = ["ProbeResult", "probe_file"]


@dataclass
class ProbeResult:
    folder: Path        # out/<recipe>/probe-<stamp>/
    data: dict          # what probe.json holds
    table: str          # what the command prints


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def probe_file(path: str, client: ComfyClient, out: Path, *, overrides: Sequence[str] = (),
               presets: Sequence[str] = (), steps: Optional[int] = None, strength: Optional[float] = None,
               say: Callable[[str], None] = _stderr, reporter_for: Optional[Callable[[Graph], Reporter]] = None,
               catalogues: Optional[CatalogueProvider] = None, allow: Sequence[str] = ()) -> ProbeResult:
    from compiler import pipeline
    source = pipeline.load(path, presets, allow=allow)   # read once, confined (--allow-path) like a run
    base, _ = compile_render(source, overrides, ())
    renders = plan(base, steps, strength)
    catalogues = catalogues or CatalogueProvider(client)   # one per probe: every render checks the same server
    reporter_for = reporter_for or (lambda graph: make_reporter(graph, sys.stderr, plain=True))

    def run(recipe, graph, folder: Path) -> dict:
        record = prepare(recipe, graph, Path(out), client, folder=folder)
        return run_prepared(record, recipe, graph, client, reporter=reporter_for(graph),
                            catalogues=catalogues).data

    folder, done = run_renders(source, overrides, (), renders, Path(out), run, say, catalogues.get())
    analysis = analyse(done)
    recipe = done[0].recipe
    panels = [Panel(title(cid, recipe.lora_mode, r), *analysis.deltas[cid]) for cid, r in analysis.results.items()]
    sheet, boxes = render_sheet(panels, analysis.baseline_image, recipe, analysis.masks)
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    write_atomic(folder / "probe.png", buf.getvalue())
    data = _document(recipe, done, analysis, steps, strength, boxes)
    write_atomic(folder / "probe.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return ProbeResult(folder, data, table(analysis.results, recipe.lora_mode))


def _document(recipe, done, analysis: Analysis, steps, strength, boxes) -> dict:
    return {
        "recipe": recipe.name, "source": recipe.source, "lora_mode": recipe.lora_mode,
        "lowering": {"options": "PROBE", "keep_zero_loras": PROBE.keep_zero_loras,
                     "save_latent": PROBE.save_latent},
        "seed": recipe.sampler.seed, "steps": recipe.sampler.steps, "steps_override": steps,
        "strength": strength,
        "renders": {(d.render.character or "baseline"): d.folder.name for d in done},
        "measure": {"latent": "mean |Δ| over batch and channels, per latent pixel",
                    "image": "mean |Δ| over RGB on 0..1, per pixel",
                    "mask_is_one": f">= {ONE}", "mask_is_zero": f"<= {ZERO}"},
        "characters": analysis.results,
        "heatmap": {"file": "probe.png",
                    "panels": [{"character": cid, **box} for cid, box in zip(analysis.results, boxes)]},
    }
