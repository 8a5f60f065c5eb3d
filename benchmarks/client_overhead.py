"""Client overhead of `recipe run`: wall time minus the server's own execution
span (execution_start -> final `executing`, as received over the WebSocket).

    python benchmarks/client_overhead.py               # against the transcript server
    python benchmarks/client_overhead.py --server 127.0.0.1:8188   # a real ComfyUI

Target (issue 3): under 100 ms per prompt. Prints the ratio to that target.
The overhead covers compile, preflight (/system_stats; /object_info once per
server, from one catalogue provider shared by the runs), the run folder, queueing, following, /history, /view and
writing the image. Each run uses a new seed, so a real server re-samples.

It measures inside one process: after the imports, and with the catalogue
held from the first run, so it leaves out interpreter start, imports and
the catalogue fetch, which a one-off `recipe run` pays. For what a user
waits for, whole processes beside the official flow, see
benchmarks/cli_overhead.py; for the edit loop, benchmarks/watch_latency.py.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.lower import lower  # noqa: E402
from compiler.run.progress import Reporter  # noqa: E402
from compiler.resolve.passes import resolve_file  # noqa: E402
from compiler.run.catalogues import CatalogueProvider  # noqa: E402
from compiler.run.steps import run_recipe  # noqa: E402

TARGET_MS = 100.0


class Quiet(Reporter):
    def say(self, text: str) -> None:
        pass


def measure(server: str, runs: int, out: Path, catalogues: CatalogueProvider) -> list:
    overheads = []
    for i in range(runs):
        t0 = time.perf_counter()
        recipe = resolve_file(str(ROOT / "recipes/sd15-duo.yaml"), [f"sampler.seed={1000 + i}"])
        graph = lower(recipe)
        record = run_recipe(recipe, graph, ComfyClient(server), out, reporter=Quiet(graph, sys.stderr),
                            catalogues=catalogues)
        wall = time.perf_counter() - t0
        span = record.data.get("observed_span_s") or 0.0
        overheads.append((wall - span) * 1000)
    return overheads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", help="a real ComfyUI (default: the transcript server, scenario 11)")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.server:
            overheads = measure(args.server, args.runs, Path(tmp), CatalogueProvider(ComfyClient(args.server)))
        else:
            from comfy_server import ComfyTestServer
            with ComfyTestServer("11-success-sd15-checkpoint-two-characters-cfg6", time_scale=0.01) as srv:
                catalogues = CatalogueProvider(ComfyClient(srv.url))
                measure(srv.url, 1, Path(tmp), catalogues)   # warm-up: imports, first catalogue fetch
                overheads = measure(srv.url, args.runs, Path(tmp), catalogues)
    median = statistics.median(overheads)
    print(f"client overhead per prompt: median {median:.1f} ms, max {max(overheads):.1f} ms over {len(overheads)} runs")
    print(f"overhead / target ({TARGET_MS:.0f} ms): {median / TARGET_MS:.2f}")


if __name__ == "__main__":
    main()
