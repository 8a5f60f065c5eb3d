"""How far one character's LoRA reaches into the other's region, for every
lowering, measured side by side on a real ComfyUI.

    python benchmarks/bleed.py --server 127.0.0.1:8188 [--family sd15 --family flux]
                               [--strength 15] [--json bleed.json]

Setup (REFERENCE.md F): the tiny random-weight models of
../shared/tools/make_tiny_models.py, two characters split left/right, A with
its LoRA at --strength (default 15, well clear of rounding), B with none, one
seed. Recipes: benchmarks/bleed/{sd15,flux}.yaml (SD1.5 256², 8 steps, cfg 6;
Flux dev shape 128², 4 steps).

For each lowering (global, hooks, hooks + regions.area mask-bounds, refine,
refine on a hooks base) it runs `recipe probe`'s own driver (a baseline with
every LoRA at 0 and the same graph structure, then A's render) and reads:
- leak: mean |Δ| in B's region beyond the feather ÷ A's effect in its own region,
  on the final latent (what VAEDecode receives) and on the PNG;
- effect: A's mean |Δ| where its mask is 1 (latent);
- share: A's region's part of all the latent change.
Then timed runs of every lowering, round-robin (--repeats rounds, so each
lowering sees the same machine), each at a new seed with the normal lowering
and A's LoRA at the same strength: server seconds (execution_start ->
execution_success, from /history) and sampling seconds per step (every
KSampler node's time, pass 2 included, over the image's steps); medians are
printed. Each timed run follows an untimed one of the same lowering (see
benchmarks/measure.py), so its text encodes are cached, for every lowering
alike: the timing compares sampling, not T5.

Includes: the server's own work per prompt. Leaves out: client time, model
loading (the first render of a family loads the models and is not timed), and
the noise of a shared CPU (every lowering runs in the same process, one after
another, so they see the same machine). Ratios are to `hooks`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compiler.check.bleed import LOWERINGS  # noqa: E402
from compiler.comfy.client import ComfyClient  # noqa: E402
from compiler.probe.driver import probe_file  # noqa: E402
from compiler.run.catalogues import CatalogueProvider  # noqa: E402
from measure import Quiet, timed_run  # noqa: E402

FAMILIES = {"sd15": ROOT / "benchmarks" / "bleed" / "sd15.yaml", "flux": ROOT / "benchmarks" / "bleed" / "flux.yaml"}


def bleed(path: Path, client: ComfyClient, sets: Sequence[str], strength: float, out: Path,
          catalogues: CatalogueProvider) -> dict:
    result = probe_file(str(path), client, out, overrides=list(sets), strength=strength, say=lambda _: None,
                        reporter_for=Quiet, catalogues=catalogues)
    a = result.data["characters"]["a"]
    return {"latent_leak": a["latent"]["leak"]["b"], "effect": a["latent"]["effect"],
            "share": a["latent"]["share"], "png_leak": a["image"]["leak"]["b"]}


def timed(path: Path, client: ComfyClient, sets: Sequence[str], strength: float, seed: int, out: Path,
          catalogues: CatalogueProvider) -> dict:
    return timed_run(path, [*sets, f"characters.a.strength={strength}"], client, out, catalogues, seed)


def measure_family(family: str, client: ComfyClient, strength: float, out: Path, repeats: int) -> Dict[str, dict]:
    path = FAMILIES[family]
    catalogues = CatalogueProvider(client)
    print(f"{family}: warming up (loads the models; not timed)", file=sys.stderr)
    timed(path, client, LOWERINGS["hooks"], strength, 1, out, catalogues)
    rows = {}
    for name, sets in LOWERINGS.items():
        print(f"{family}: probing {name}", file=sys.stderr, flush=True)
        rows[name] = bleed(path, client, sets, strength, out, catalogues)
    times: Dict[str, list] = {name: [] for name in LOWERINGS}
    for round_ in range(repeats):
        for i, (name, sets) in enumerate(LOWERINGS.items()):
            print(f"{family}: timing {name} ({round_ + 1}/{repeats})", file=sys.stderr, flush=True)
            times[name].append(timed(path, client, sets, strength, 100 + 10 * round_ + i, out, catalogues))
    for name, runs in times.items():
        rows[name].update({key: statistics.median(r[key] for r in runs if r[key] is not None)
                           for key in ("server_s", "s_per_step")}, runs=runs)
    return rows


def _ratio(value: Optional[float], base: Optional[float]) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}x"


def table(family: str, rows: Dict[str, dict]) -> str:
    hooks = rows["hooks"]
    head = ("lowering", "latent leak", "share", "effect", "PNG leak", "server s", "s/step",
            "leak/hooks", "effect/hooks", "server/hooks", "s/step/hooks")
    lines = [head]
    for name, r in rows.items():
        lines.append((name, f"{r['latent_leak']:.4f}", f"{100 * r['share']:.1f}%", f"{r['effect']:.3g}",
                      f"{r['png_leak']:.2f}", f"{r['server_s']:.1f}",
                      f"{r['s_per_step']:.2f}", _ratio(r["latent_leak"], hooks["latent_leak"]),
                      _ratio(r["effect"], hooks["effect"]), _ratio(r["server_s"], hooks["server_s"]),
                      _ratio(r["s_per_step"], hooks["s_per_step"])))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)
    return f"{family} (A's LoRA only; leak and share on the final latent):\n{body}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES))
    ap.add_argument("--strength", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds over every lowering (default 2)")
    ap.add_argument("--json", help="also write the measurements here")
    ap.add_argument("--out", help="keep the run folders here (default: a temporary folder)")
    args = ap.parse_args()
    client = ComfyClient(args.server)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bleed-") as tmp:
        for family in args.family or ["sd15", "flux"]:
            results[family] = measure_family(family, client, args.strength, Path(args.out or tmp), args.repeats)
            print(table(family, results[family]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
