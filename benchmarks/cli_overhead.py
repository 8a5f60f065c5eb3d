"""What a user waits for beyond the server, timed as whole processes (issue 12).

    python benchmarks/cli_overhead.py --server 127.0.0.1:8188 \\
        --set canvas.width=64 --set canvas.height=64 --set sampler.steps=1
    python benchmarks/cli_overhead.py          # against the transcript server (tests/comfy_server.py)

What it times, each as a fresh process, interleaved (the order alternates),
median of -n runs after one untimed warm-up of each:
- `recipe run RECIPE --server S` against benchmarks/official_flow.py (the
  official websockets example: queue -> `executing` null -> /history -> /view)
  on the same compiled graph, in two cases:
  * resubmit: the graph unchanged, so the server serves every node from its
    cache and what remains is client cost (and our compile and catalogue
    caches are warm);
  * new seed: each process gets a seed of its own, so the server samples again.
- `recipe compile` (cold: RECIPE_NO_CACHE=1; and warm, from the compile cache)
  and `recipe check` against `python -c pass`.

Our package's bytecode is compiled first (compileall, into __pycache__), as
`pip install` does and as Python does on a first import; without it every
process would compile our sources again where PYTHONDONTWRITEBYTECODE is set
(this sandbox sets it), about 40 ms the official flow, all stdlib and
installed packages, never pays.

Wall is perf_counter around the process; cpu is its user+system time. It
includes interpreter start, imports, compile, preflight, the run folder,
queueing, following, /history and /view, and writing images. It leaves out
nothing of the process, and it does not subtract the server: the server's own
span (execution_start -> execution_success in /history) is printed beside,
so a busy shared server can be told from client cost: on a server with
/api/jobs, "wall minus the server's queue+run" takes away create_time ->
execution_end_time of our own prompt, the time it waited behind other
users' prompts included. Other users of the CPU add noise to both alike.

benchmarks/client_overhead.py is the in-process view: after imports, with
the catalogue already held, it times one run_recipe call.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GOAL_RUN_MS, GOAL_COMPILE_S = 150.0, 0.3


def timed(argv, env=None, cwd=ROOT):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip()


def server_ms(server: str, prompt_id: str):
    """What the server spent on our prompt, by its own clock: (queued and run,
    run). From /api/jobs/{id} (create_time -> execution_end_time, which
    covers the wait behind other users' prompts) where the server has it,
    else /history's execution_start -> execution_success for both."""
    try:
        job = json.loads(urllib.request.urlopen(f"http://{server}/api/jobs/{prompt_id}", timeout=10).read())
        return (job["execution_end_time"] - job["create_time"],
                job["execution_end_time"] - job["execution_start_time"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    try:
        entry = json.loads(urllib.request.urlopen(f"http://{server}/history/{prompt_id}", timeout=10).read())
        stamps = {k: d.get("timestamp") for k, d in entry[prompt_id]["status"]["messages"]}
        run = stamps["execution_success"] - stamps["execution_start"]
        return run, run
    except (OSError, KeyError, ValueError, TypeError):
        return None


def run_pair(args, work: Path, seed):
    """One `recipe run` and one official flow, in the order given; their (wall, cpu, server ms)."""
    sets = [x for s in args.set for x in ("--set", s)]
    recipe_argv = [PY, "-m", "compiler", "run", args.recipe, "--server", args.server, *sets,
                   "--out", str(work / "out"), "--plain"] + (["--set", f"sampler.seed={seed[0]}"] if seed else [])
    official_argv = [PY, str(ROOT / "benchmarks/official_flow.py"), args.server, str(work / "graph.api.json"),
                     str(work / "official")] + (["--seed", str(seed[1])] if seed else [])
    result = {}
    for name, argv in (("recipe", recipe_argv), ("official", official_argv))[::args.order]:
        wall, cpu, out = timed(argv)
        pid = json.loads((Path(out.splitlines()[-1]) / "run.json").read_text())["prompt_id"] \
            if name == "recipe" else out.splitlines()[-1]
        result[name] = (wall, cpu, server_ms(args.server, pid))
    return result


def case(args, work: Path, label: str, new_seed: bool, warm_up: bool = True) -> float:
    seeds = iter(range(10_000 + int(time.time()) % 10_000 * 100, 10**9, 2))
    if warm_up:   # caches, models, sockets
        run_pair(args, work, (next(seeds), next(seeds)) if new_seed else None)
    rows = {"recipe": [], "official": []}
    for i in range(args.n):
        args.order = 1 if i % 2 == 0 else -1
        for name, value in run_pair(args, work, (next(seeds), next(seeds)) if new_seed else None).items():
            rows[name].append(value)
    print(f"\n{label} (median of {args.n}, interleaved):")
    med, own = {}, {}
    for name, values in rows.items():
        wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        mine = [v[0] * 1000 - v[2][0] for v in values if v[2] is not None]
        runs = [v[2][1] for v in values if v[2] is not None]
        med[name], own[name] = wall, (statistics.median(mine) if mine else None)
        shown = f"{own[name]:7.0f} ms" if mine else "      ?"
        print(f"  {name + (' run' if name == 'recipe' else ' flow'):<14} wall {wall * 1000:7.0f} ms   "
              f"cpu {cpu * 1000:6.0f} ms   server ran it {statistics.median(runs) if runs else 0:7.0f} ms   "
              f"wall minus the server's queue+run {shown}")
    diff = (med["recipe"] - med["official"]) * 1000
    print(f"  recipe run - official flow: wall {diff:+.0f} ms", end="")
    if own["recipe"] is not None and own["official"] is not None:
        diff = own["recipe"] - own["official"]
        print(f"; without the server's time {diff:+.0f} ms", end="")
    print(f" (goal: at most +{GOAL_RUN_MS:.0f} ms)")
    return diff


def compile_rows(args) -> None:
    cmds = {"python -c pass": ([PY, "-c", "pass"], {}),
            "recipe compile (cold)": ([PY, "-m", "compiler", "compile", args.compile_recipe, "-o", os.devnull],
                                      {"RECIPE_NO_CACHE": "1"}),
            "recipe compile (cached)": ([PY, "-m", "compiler", "compile", args.compile_recipe, "-o", os.devnull], {}),
            "recipe check (cold)": ([PY, "-m", "compiler", "check", args.compile_recipe],
                                    {"RECIPE_NO_CACHE": "1"})}
    for argv, env in cmds.values():
        timed(argv, env)   # warm-up: the file system cache, the compile cache
    rows = {name: [] for name in cmds}
    for _ in range(args.n):
        for name, (argv, env) in cmds.items():
            rows[name].append(timed(argv, env)[:2])
    print(f"\ncompile and check, {args.compile_recipe} (median of {args.n}, interleaved):")
    base = statistics.median(w for w, _ in rows["python -c pass"])
    for name, values in rows.items():
        wall, cpu = statistics.median(w for w, _ in values), statistics.median(c for _, c in values)
        extra = "" if name.startswith("python") else f"   {wall - base:+.3f} s over python, {wall / base:4.1f}x"
        print(f"  {name:<24} wall {wall:6.3f} s   cpu {cpu:6.3f} s{extra}")
    cold = statistics.median(w for w, _ in rows["recipe compile (cold)"])
    print(f"  cold compile: {cold:.3f} s (goal: at most {GOAL_COMPILE_S} s)")


def ensure_bytecode() -> str:
    """Compile compiler/ to bytecode, as an installed package has it."""
    compileall.compile_dir(str(ROOT / "compiler"), quiet=1)
    why = " (PYTHONDONTWRITEBYTECODE is set here)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"bytecode of compiler/ compiled first{why}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="HOST:PORT of a ComfyUI (default: the transcript server)")
    parser.add_argument("--recipe", default="recipes/sd15-duo.yaml")
    parser.add_argument("--compile-recipe", default="recipes/portrait.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-n", type=int, default=7)
    parser.set_defaults(order=1)
    parser.add_argument("--skip", action="append", default=[], choices=["resubmit", "new-seed", "compile"])
    args = parser.parse_args()
    server = None
    if not args.server:
        sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
        from comfy_server import ComfyTestServer
        server = ComfyTestServer("11-success-sd15-checkpoint-two-characters-cfg6").__enter__()
        args.server = server.url.split("//", 1)[1]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "official").mkdir()
            sets = [x for s in args.set for x in ("--set", s)]
            graph = subprocess.run([PY, "-m", "compiler", "compile", args.recipe, *sets], cwd=ROOT,
                                   capture_output=True, text=True, check=True).stdout
            (work / "graph.api.json").write_text(graph)
            print(f"server {args.server}{' (the transcript server)' if server else ''}; recipe {args.recipe} "
                  f"{' '.join(args.set)}; python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} cpus; {ensure_bytecode()}")
            if "resubmit" not in args.skip:
                case(args, work, "unchanged resubmit (server serves it from its cache)", new_seed=False)
            if "new-seed" not in args.skip:   # after the resubmit case, everything is warm already
                case(args, work, "new seed each run (server samples again)", new_seed=True,
                     warm_up="resubmit" in args.skip)
            if "compile" not in args.skip:
                compile_rows(args)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
