"""`recipe probe`: measure how far each character's LoRA reaches outside its region."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Dict

from compiler.cli.common import client_opts

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("probe", help="render with each character's LoRA alone and measure its leak into the "
                                     "other regions (probe.json, probe.png)")
    common(p)
    server_opts(p, required=True)
    p.add_argument("--steps", type=int, metavar="N", help="sampler steps for every render (default: the recipe's)")
    p.add_argument("--strength", type=float, metavar="S",
                   help="each character's LoRA at S, model and clip, when it is on (default: its own strengths)")
    client_opts(p)


def cmd_probe(args) -> int:
    from compiler.cli.common import cache_dir, client_for, compile_checked
    from compiler.probe.driver import probe_file
    from compiler.run.catalogues import CatalogueProvider
    from compiler.run.progress import make_reporter
    compile_checked(args)   # the advisor's errors stop a probe as they stop a run
    client = client_for(args.server, args)
    result = probe_file(args.file, client, Path(args.out), overrides=args.overrides, presets=args.presets,
                        allow=args.allow,
                        steps=args.steps, strength=args.strength,
                        catalogues=CatalogueProvider(client, cache_dir()),
                        reporter_for=lambda graph: make_reporter(graph, sys.stderr,
                                                                 plain=True if args.plain else None))
    print(result.table)
    print(f"wrote {result.folder / 'probe.json'} and {result.folder / 'probe.png'}", file=sys.stderr)
    return 0


COMMANDS: Dict[str, Callable] = {"probe": cmd_probe}
