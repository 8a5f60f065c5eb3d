"""CLI commands that talk to a server: run and resume."""
from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from compiler.cli.common import client_opts

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("run", help="compile, check against the server, run, and save the images")
    common(p)
    # Not server_opts: --variant/--sweep jobs spread over every --server given.
    p.add_argument("--server", required=True, action="append", metavar="HOST:PORT",
                   help="ComfyUI server, e.g. localhost:8188 or https://comfy.example:443; "
                        "repeat it to spread --variant/--sweep jobs over several")
    client_opts(p)
    p.add_argument("--strict", action="store_true", help="treat advisor warnings as errors")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="on a terminal, a line per node and a bar per sampler instead of one status line")
    p.add_argument("--variant", dest="variants", action="append", default=[], metavar="NAME",
                   help="run this variant from the recipe's `variants:` (repeatable; `base` is the recipe "
                        "as written); each gets a run folder in one sweep folder, with a contact sheet and report")
    p.add_argument("--sweep", action="store_true",
                   help="run every combination of the recipe's sweep: values, cache-aware order")

    p = sub.add_parser("resume", help="collect the results of a run whose client went away")
    p.add_argument("run_dir", help="the run folder (it has run.json)")
    p.add_argument("--server", help="ask this server instead of the one in run.json")
    client_opts(p)


def cmd_run(args) -> int:
    from compiler.cli.common import cache_dir, client_for, compile_checked, server_catalogue
    from compiler.run.catalogues import ClassCatalogues
    from compiler.run.progress import make_reporter
    from compiler.run.steps import run_recipe
    if args.variants or args.sweep:
        from compiler.cli.ab import run_jobs
        return run_jobs(args, lambda server: client_for(server, args), cache_dir())
    if len(args.server) > 1:
        from compiler.errors import RecipeError
        raise RecipeError("several --server are for --variant and --sweep runs; one run uses one server")
    client = client_for(args.server[0], args)
    catalogues = ClassCatalogues(client, cache_dir())   # only the classes the graph uses, kept on disk a while
    done = compile_checked(args, catalogue=lambda graph: server_catalogue(catalogues, graph))
    reporter = make_reporter(done.graph, sys.stderr, plain=True if args.plain else None, verbose=args.verbose)
    record = run_recipe(done.recipe, done.graph, client, Path(args.out), reporter=reporter, catalogues=catalogues,
                        resolved=done.resolved)
    print(record.folder)
    return 0


def cmd_resume(args) -> int:
    from compiler.cli.common import client_for
    from compiler.run.steps import resume_run
    record = resume_run(Path(args.run_dir), lambda server: client_for(args.server or server, args),
                        plain=True if args.plain else None)
    print(record.folder)
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"run": cmd_run, "resume": cmd_resume})
