"""What the benchmarks that run on a real ComfyUI share: a reporter that
prints nothing, and one timed run read back from its run.json."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.lower import lower  # noqa: E402
from compiler.resolve import resolve_file  # noqa: E402
from compiler.run.progress import Reporter  # noqa: E402
from compiler.run.steps import run_recipe  # noqa: E402

__all__ = ["Quiet", "timed_run"]


class Quiet(Reporter):
    """A run's progress, left unprinted: the benchmark prints its own lines."""

    def __init__(self, graph):
        super().__init__(graph, sys.stderr)

    def say(self, text: str) -> None:
        pass

    def node(self, node_id: str) -> None:
        pass


def timed_run(recipe_path: str, overrides, client, out: Path, catalogues, seed: int) -> dict:
    """The server's seconds (execution_start -> execution_success, from
    /history) and sampling seconds per step (every KSampler node's time over
    the image's steps) of the recipe at `seed`. It runs first at seed + 1,
    untimed: ComfyUI's default cache keeps only the previous prompt's outputs,
    so without that run the timing would include whichever text encodes the
    previous prompt did not share (tens of seconds of T5 on a CPU)."""
    for s in (seed + 1, seed):
        recipe = resolve_file(str(recipe_path), [*overrides, f"sampler.seed={s}"])
        graph = lower(recipe)
        record = run_recipe(recipe, graph, client, out, reporter=Quiet(graph), catalogues=catalogues)
    rows = record.data.get("timings") or []
    sampling = sum(r["seconds"] for r in rows if r.get("class_type") == "KSampler")
    return {"server_s": record.data.get("server_span_s") or 0.0, "s_per_step": sampling / recipe.sampler.steps}
