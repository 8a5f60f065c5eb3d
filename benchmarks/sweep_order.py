"""Cache-aware sweep order against naive order, measured on the transcript server.

    python benchmarks/sweep_order.py [--repeat 3] [--time-scale 0.05]
    python benchmarks/sweep_order.py --server 127.0.0.1:8188     # a real ComfyUI

Measured on a real ComfyUI 0.8.0 (CPU, tiny SD1.5 models, 12 jobs):
cache-aware / naive re-executed nodes 0.54 (52 vs 97 of 228, from
execution_cached), wall time 0.92 (105 s vs 115 s).

The same 12-job sweep (seed x light x LoRA strength over recipes/sd15-duo.yaml)
runs twice through `recipe run --sweep`'s runner: in the order the file
expands to (naive) and in cache-aware order. Each order gets a fresh server.

Re-executed nodes are counted on what the server actually received: for each
POST /prompt, in arrival order, the nodes whose signature (Graph.signatures,
ComfyUI's cache key) the previous prompt lacked. That is exactly what ComfyUI
re-runs under its default classic cache (REFERENCE A5).

Wall time: the stand-in replays scenario 11's recorded node durations
(scaled by --time-scale), and here it also emulates the classic cache for
time: a node whose signature was in the previous prompt costs nothing. The
recording's sampler (9 s of its 13 s) re-runs whenever anything changes, so
expect a much smaller gain in time than in nodes; on a real server the
encodes and LoRA loads it saves are dearer (REFERENCE F: T5 ~30 s on a CPU).
A third run, one prompt at a time (no queue-ahead), shows what queueing
the next job while the current one runs is worth.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from comfy_server import ComfyTestServer  # noqa: E402
from compiler import pipeline  # noqa: E402
from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.ir.graph import Graph  # noqa: E402
from compiler.lower import lower  # noqa: E402
from compiler.ab.sweep import Compiled, run_sweep  # noqa: E402
from compiler.ab.variants import plan_jobs, resolve_job  # noqa: E402

SCENARIO = "11-success-sd15-checkpoint-two-characters-cfg6"
RECIPE = f"""\
extends: {ROOT / 'recipes/sd15-duo.yaml'}
name: sweep-bench
vars: {{light: soft daylight}}
characters:
  a: {{prompt: "{{{{ trigger }}}}, 25yo woman, three-quarter headshot, {{{{ vars.light }}}}"}}
sweep:
  sampler.seed: [1, 2, 3]
  vars.light: [rembrandt, window light from camera left]
  characters.a.strength.model: [0.6, 0.8]
"""


class ClassicCacheServer(ComfyTestServer):
    """The stand-in, with ComfyUI's classic cache emulated for time: a node
    whose signature was in the previous prompt takes no time. Messages are
    still replayed as recorded; only the waits change."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._previous: frozenset = frozenset()
        self._cached: dict = {}

    async def _run(self, job) -> None:
        sigs = Graph.from_api(job.prompt).signatures()
        self._cached = {node: sig in self._previous for node, sig in sigs.items()}
        try:
            await super()._run(job)
        finally:
            self._previous = frozenset(sigs.values())

    async def _pause(self, job, seconds: float) -> None:
        # The wait before a step is the duration of the node then running.
        await super()._pause(job, 0.0 if self._cached.get(job.current) else seconds)


def reexecuted_on_server(server: ComfyTestServer) -> tuple:
    """(re-executed nodes, all nodes) over the prompts the server received, in order."""
    posts = [r.body["prompt"] for r in server.requests if r.method == "POST" and r.path == "/prompt"]
    total, rerun, previous = 0, 0, frozenset()
    for prompt in posts:
        sigs = Graph.from_api(prompt).signatures()
        total += len(sigs)
        rerun += sum(1 for s in sigs.values() if s not in previous)
        previous = frozenset(sigs.values())
    return rerun, total


def loaded(path: str):
    """The sweep recipe, which extends recipes/sd15-duo.yaml from a temporary
    folder: allowed, as --allow-path would."""
    return pipeline.load(path, allow=[str(ROOT / "recipes")])


def one_run(path: str, order: str, ahead: int, scale: float, out: Path) -> tuple:
    path = loaded(path)
    plan = plan_jobs(path, sweep=True)
    compiled = []
    for job in plan.jobs:
        recipe = resolve_job(path, job)
        compiled.append(Compiled(job, recipe, lower(recipe)))
    with ClassicCacheServer(SCENARIO, time_scale=scale) as srv:
        t0 = time.perf_counter()
        sweep = run_sweep(plan, compiled, [srv.url], ComfyClient, out, order=order, ahead=ahead,
                          say=lambda text: None)
        wall = time.perf_counter() - t0
        rerun, total = reexecuted_on_server(srv)
    ok = sum(1 for j in sweep.data["jobs"] if j["status"] == "success")
    if ok != len(compiled):
        raise SystemExit(f"{order}: only {ok} of {len(compiled)} jobs succeeded")
    return rerun, total, wall, len(compiled)


def one_real_run(path: str, order: str, server: str, out: Path) -> tuple:
    """The same sweep on a real ComfyUI: re-executed nodes are what the server
    did not list in execution_cached (run.json `cached`) for each job."""
    path = loaded(path)
    plan = plan_jobs(path, sweep=True)
    compiled = [Compiled(job, r, lower(r)) for job in plan.jobs for r in [resolve_job(path, job)]]
    t0 = time.perf_counter()
    sweep = run_sweep(plan, compiled, [server], ComfyClient, out, order=order, ahead=1, say=lambda text: None)
    wall = time.perf_counter() - t0
    rerun = total = 0
    for entry in sweep.data["jobs"]:
        record = json.loads((sweep.folder / entry["folder"] / "run.json").read_text())
        total += entry["nodes"]
        rerun += entry["nodes"] - len(record.get("cached", []))
    return rerun, total, wall, len(compiled)


def measure(label: str, path: str, order: str, ahead: int, args, out: Path) -> dict:
    if args.server:
        runs = [one_real_run(path, order, args.server, out)]
    else:
        runs = [one_run(path, order, ahead, args.time_scale, out) for _ in range(args.repeat)]
    rerun, total, _, jobs = runs[0]
    wall = statistics.median(r[2] for r in runs)
    print(f"{label:<34} re-executed nodes {rerun:>4} of {total:<4} wall {wall:6.2f} s "
          f"(median of {args.repeat})")
    return {"rerun": rerun, "wall": wall, "jobs": jobs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per order; the median wall time counts")
    ap.add_argument("--time-scale", type=float, default=0.02,
                    help="recorded seconds -> replayed seconds (scenario 11 records 13.3 s per prompt)")
    ap.add_argument("--server", help="measure on this real ComfyUI instead (cached nodes from "
                                       "execution_cached; one run per order)")
    args = ap.parse_args()
    if args.server:
        args.repeat = 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "sweep-bench.yaml")
        path.write_text(RECIPE, encoding="utf-8")
        out = Path(tmp, "out")
        naive = measure("naive order", str(path), "naive", 1, args, out)
        cache = measure("cache-aware order", str(path), "cache", 1, args, out)
        serial = measure("cache-aware, one prompt at a time", str(path), "cache", 0, args, out) \
            if not args.server else cache
    where = f"the real ComfyUI at {args.server}" if args.server else \
        f"the transcript server ({SCENARIO}), time scale {args.time_scale}"
    print(f"sweep: {naive['jobs']} jobs on {where}")
    print(f"cache-aware / naive re-executed nodes: {cache['rerun'] / naive['rerun']:.2f}")
    print(f"cache-aware / naive wall time: {cache['wall'] / naive['wall']:.2f}")
    if not args.server:
        print(f"queue-ahead / one-at-a-time wall time: {cache['wall'] / serial['wall']:.2f}")


if __name__ == "__main__":
    main()
