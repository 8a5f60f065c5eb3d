"""What `lora_mode: refine` costs against `hooks` on a two-character recipe
with both LoRAs, at the same size and steps, measured on a real ComfyUI.

    python benchmarks/refine_cost.py --server 127.0.0.1:8188 [--recipe recipes/sd15-duo.yaml]
                                     [--rounds 3] [--set KEY=VALUE ...]

Each round runs hooks, then refine, each at a new seed (so the sampler really
runs), each after an untimed run of the same lowering so its text encodes are
cached, for both alike (benchmarks/measure.py). Prints
per lowering the median server seconds (execution_start -> execution_success,
from /history) and sampling seconds per step (every KSampler node, refine's
pass 2 included, over the image's steps), and refine's ratio to hooks,
whatever it is. Includes: the server's work per prompt. Leaves out: client
time, model loading (a first, untimed run loads them), and the first round's
encodes. On a shared CPU the rounds alternate so both see the same machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.run.catalogues import CatalogueProvider  # noqa: E402
from measure import timed_run  # noqa: E402

MODES = {"hooks": ["lora_mode=hooks"], "refine": ["lora_mode=refine"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "sd15-duo.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    client = ComfyClient(args.server)
    catalogues = CatalogueProvider(client)
    runs = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="refine-cost-") as tmp:
        timed_run(args.recipe, args.sets, client, Path(tmp), catalogues, 1)   # loads the models, untimed
        for r in range(args.rounds):
            for i, (mode, sets) in enumerate(MODES.items()):
                print(f"round {r + 1}/{args.rounds}: {mode}", file=sys.stderr, flush=True)
                runs[mode].append(timed_run(args.recipe, [*args.sets, *sets], client, Path(tmp), catalogues,
                                            1000 + 10 * r + 2 * i))
    med = {m: {k: statistics.median(x[k] for x in rs) for k in ("server_s", "s_per_step")} for m, rs in runs.items()}
    print(f"{Path(args.recipe).name} {' '.join(args.sets)} ({args.rounds} rounds, medians):")
    for mode, m in med.items():
        print(f"  {mode:<7} server {m['server_s']:.2f} s   sampling {m['s_per_step']:.2f} s/step")
    print(f"  refine / hooks: server {med['refine']['server_s'] / med['hooks']['server_s']:.2f}x, "
          f"sampling {med['refine']['s_per_step'] / med['hooks']['s_per_step']:.2f}x")


if __name__ == "__main__":
    main()
