"""The `recipe` command: a thin shell over the library, and the only place
where errors become exit codes (0 ok, 2 bad recipe, 1 anything else).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, List, Optional

from . import __version__
from .errors import RecipeError

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the recipe (.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key for this command, e.g. --set sampler.seed=7 (repeatable)")
    p.add_argument("--preset", dest="presets", action="append", default=[], metavar="NAME",
                   help="merge a preset over the recipe, e.g. --preset speed (repeatable)")


def _server_opts(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--server", required=required, metavar="HOST:PORT",
                   help="ComfyUI server, e.g. localhost:8188 or https://comfy.example:443")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recipe", description="Compile YAML recipes to ComfyUI graphs and run them.")
    parser.add_argument("--version", action="version", version=f"recipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="compile a recipe to a ComfyUI API graph (no server needed)")
    _common(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write the graph here instead of stdout")
    p.add_argument("--resolved", metavar="FILE", help="also write the fully resolved recipe here")

    p = sub.add_parser("resolve", help="print the fully resolved recipe (presets, defaults, rendered prompts)")
    _common(p)

    p = sub.add_parser("validate", help="compile and check the graph against a node catalogue")
    _common(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--object-info", metavar="PATH", help="a saved GET /object_info answer")
    group.add_argument("--server", metavar="HOST:PORT", help="ask this ComfyUI server for its catalogue")

    from . import cli_run
    cli_run.add_commands(sub, _common, _server_opts)
    return parser


def cmd_compile(args) -> int:
    from .emit import resolved_yaml, write_atomic
    from .resolve import resolve_file
    from .lower import lower
    recipe = resolve_file(args.file, args.overrides, args.presets)
    graph = lower(recipe)
    if args.resolved:
        write_atomic(args.resolved, resolved_yaml(recipe))
    if args.output:
        write_atomic(args.output, graph.to_json())
        print(f"wrote {args.output} ({len(graph.nodes)} nodes)", file=sys.stderr)
    else:
        sys.stdout.write(graph.to_json())
    return 0


def cmd_resolve(args) -> int:
    from .emit import resolved_yaml
    from .resolve import resolve_file
    sys.stdout.write(resolved_yaml(resolve_file(args.file, args.overrides, args.presets)))
    return 0


def cmd_validate(args) -> int:
    from .catalogue import Catalogue, check_graph
    from .lower import lower
    from .resolve import resolve_file
    recipe = resolve_file(args.file, args.overrides, args.presets)
    graph = lower(recipe)
    if args.object_info:
        catalogue = Catalogue.from_file(args.object_info)
    else:
        from .client import ComfyClient
        catalogue = Catalogue(ComfyClient(args.server).object_info(), args.server)
    check_graph(graph, catalogue, recipe.locate)
    print(f"ok: {len(graph.nodes)} nodes fit the catalogue of {catalogue.origin}")
    return 0


COMMANDS: Dict[str, Callable] = {"compile": cmd_compile, "resolve": cmd_resolve, "validate": cmd_validate}


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import cli_run
    handler = {**COMMANDS, **cli_run.COMMANDS}[args.command]
    try:
        return handler(args)
    except RecipeError as exc:
        for line in exc.lines():
            print(f"error: {line}" if not line.startswith(("warning:", "error:")) else line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug in recipe itself: one line, traceback on request
        if os.environ.get("RECIPE_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set RECIPE_DEBUG=1 for a traceback, "
              f"and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
