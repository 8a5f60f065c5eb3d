"""Per-step cost of the hook-group layout, measured on a real ComfyUI.

    python benchmarks/hook_groups.py --server 127.0.0.1:8188 [--steps 6]

Compares, on the SD1.5 two-character recipe at cfg 6 (the negative *is*
evaluated), the graph `recipe` emits (each region's positive and negative
carry one HookGroup: SetClipHooks apply_to_conds=False + hooks on the Pair
node -> 2 groups a step) against the usual wiring (apply_to_conds=True, an
unhooked shared negative -> 3 groups a step, as in transcripts/11), and the
same with global LoRAs (1 group). Prints seconds per step (from WebSocket
progress timestamps, first step excluded: it pays the LoRA merge) and ratios.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.lower import lower  # noqa: E402
from compiler.resolve.passes import resolve_file  # noqa: E402


def graphs(steps: int, seed: int) -> dict:
    sets = [f"sampler.steps={steps}", f"sampler.seed={seed}"]
    ours = lower(resolve_file(str(ROOT / "recipes/sd15-duo.yaml"), sets)).to_api()
    usual = copy.deepcopy(ours)
    for node in usual.values():
        if node["class_type"] == "SetClipHooks":
            node["inputs"]["apply_to_conds"] = True
        if node["class_type"].startswith("PairConditioningSet"):
            node["inputs"].pop("hooks", None)
    glob = lower(resolve_file(str(ROOT / "recipes/sd15-duo.yaml"), sets + ["lora_mode=global"])).to_api()
    return {"recipe (2 groups)": ours, "usual wiring (3 groups)": usual, "global LoRAs (1 group)": glob}


def seconds_per_step(client: ComfyClient, graph: dict) -> float:
    cid = uuid.uuid4().hex
    with client.open_events(cid) as stream:
        queued = client.queue_prompt(graph, client_id=cid)
        outcome = stream.wait(queued.prompt_id)
    ticks = [e.received for e in outcome.events if e.type == "progress" and e.data.get("node") == "sampler"]
    if outcome.status != "success" or len(ticks) < 3:
        raise SystemExit(f"run failed: {outcome.status} {outcome.error}")
    return (ticks[-1] - ticks[0]) / (len(ticks) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    client = ComfyClient(args.server)
    results = {}
    for r in range(args.repeats):
        for name, graph in graphs(args.steps, 7000 + r).items():
            results.setdefault(name, []).append(seconds_per_step(client, graph))
    base = statistics.median(results["recipe (2 groups)"])
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:<26} {med:6.2f} s/step   ratio to recipe: {med / base:.2f}")


if __name__ == "__main__":
    main()
