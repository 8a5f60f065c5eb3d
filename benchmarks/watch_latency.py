"""From a save to the new image in `recipe watch`, against the server's own time.

    python benchmarks/watch_latency.py --server 127.0.0.1:8188 --edits 6
    python benchmarks/watch_latency.py          # against the transcript server

A watch session (the CLI's loop: filesystem events, the compile cache, the
session's catalogue) runs in this process on a copy of recipes/sd15-duo.yaml
at 64x64, 1 step. Each edit changes the seed and saves the file the way
editors do (a temporary file renamed into place). For each edit it takes
the wall time from just before the rename to the moment the version's image
is in its run folder, and the server's own time for the prompt: on a server
with /api/jobs create_time -> execution_end_time (a shared server's queue
wait counts as the server's), else execution_start -> execution_success from
/history. The difference is what the watch adds: noticing the save,
compiling, checking, queueing, following and downloading. It prints each
edit and the median.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from compiler import pipeline  # noqa: E402
from compiler.cache import CompileCache  # noqa: E402
from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.watch.loop import Runner, Session  # noqa: E402
from compiler.watch.page import WatchState  # noqa: E402

GOAL_MS = 200.0
TEXT = "extends: {base}\ncanvas: {{width: 64, height: 64}}\nsampler: {{steps: 1, seed: {seed}}}\n"


def server_ms(client: ComfyClient, prompt_id: str):
    """The server's own time for our prompt: create_time -> execution_end_time
    from /api/jobs/{id} (so a wait behind other users' prompts counts as the
    server's), else execution_start -> execution_success from /history."""
    if client.jobs_supported():
        job = client.job(prompt_id)
        if job.get("execution_end_time") and job.get("create_time"):
            return job["execution_end_time"] - job["create_time"]
    entry = client.history(prompt_id) or {}
    stamps = {k: d.get("timestamp") for k, d in entry.get("status", {}).get("messages", [])}
    if "execution_start" in stamps and "execution_success" in stamps:
        return stamps["execution_success"] - stamps["execution_start"]
    return None


def finished(state: WatchState, n: int):
    v = [v for v in state.versions if v.n == n and v.status != "running"]
    return v[0] if v else None


def save(path: Path, text: str) -> float:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    t = time.time()
    os.replace(tmp, path)
    return t


def start_session(server: str, recipe: Path, tmp: Path):
    """The CLI's watch loop on `recipe`, in a thread: (state, session, stop, thread)."""
    state = WatchState(str(recipe))
    runner = Runner(ComfyClient(server), ComfyClient(server), tmp / "out", state,
                    show=lambda _: None, warn=lambda line: print(line, file=sys.stderr))
    cache = CompileCache(tmp / "compiled")

    def compile_fn():
        # It extends recipes/sd15-duo.yaml from a temporary folder: allowed, as --allow-path would.
        return pipeline.compile(str(recipe), cache=cache, allow=[str(ROOT / "recipes")])

    session = Session(str(recipe), compile_fn, runner, warn=lambda line: print(line, file=sys.stderr))
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,), daemon=True)
    thread.start()
    return state, session, stop, thread


def one_edit(client: ComfyClient, state: WatchState, recipe: Path, n: int, text: str):
    """Save version n; (save -> image ms, the server's ms)."""
    t_save = save(recipe, text)
    while (v := finished(state, n)) is None:
        time.sleep(0.002)
    t_image = time.time()
    if v.status != "success":
        raise SystemExit(f"version {n} {v.status}: {v.error}")
    return (t_image - t_save) * 1000, server_ms(client, v.record["prompt_id"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="HOST:PORT of a ComfyUI (default: the transcript server)")
    parser.add_argument("--edits", type=int, default=6)
    args = parser.parse_args()
    srv = None
    if not args.server:
        from comfy_server import ComfyTestServer
        srv = ComfyTestServer("11-success-sd15-checkpoint-two-characters-cfg6").__enter__()
        args.server = srv.url
    client, base, rows = ComfyClient(args.server), ROOT / "recipes/sd15-duo.yaml", []
    seed = 50_000 + int(time.time()) % 10_000 * 10
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "duo.yaml"
        recipe.write_text(TEXT.format(base=base, seed=seed))
        state, session, stop, thread = start_session(args.server, recipe, Path(tmp))
        try:
            deadline = time.monotonic() + 600
            while finished(state, 1) is None:   # the first version: models load, catalogue fetched
                if time.monotonic() > deadline:
                    raise SystemExit("no first version within 600 s (see the lines above)")
                time.sleep(0.01)
            print(f"server {args.server}{' (the transcript server)' if srv else ''}; file events: "
                  f"{session.events.kind}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
            for n in range(2, args.edits + 2):
                total, span = one_edit(client, state, recipe, n, TEXT.format(base=base, seed=seed + n))
                rows.append((total, span))
                added = f"{total - span:6.0f} ms" if span is not None else "     ?"
                print(f"  edit {n - 1}: save -> image {total:6.0f} ms, server {span if span is not None else '?':>5} ms,"
                      f" watch adds {added}")
        finally:
            stop.set()
            thread.join(10)
            if srv is not None:
                srv.__exit__(None, None, None)
    added = [t - s for t, s in rows if s is not None]
    if added:
        print(f"median over {len(added)} edits: the watch adds {statistics.median(added):.0f} ms to the server's "
              f"{statistics.median(s for _, s in rows if s is not None):.0f} ms (goal: at most {GOAL_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
