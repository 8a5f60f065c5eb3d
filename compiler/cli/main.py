"""The `recipe` command: a thin shell over the library, and the only place
where errors become exit codes (0 ok, 2 bad recipe, 1 anything else).
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from types import MappingProxyType, ModuleType
from typing import Callable, List, Mapping, Optional, Tuple

from compiler._version import __version__
from compiler.cli.common import catalogue_from, compile_checked, write_or_print, write_output
from compiler.errors import Location, RecipeError, printable

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the recipe (.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key for this command, e.g. --set sampler.seed=7 (repeatable)")
    p.add_argument("--preset", dest="presets", action="append", default=[], metavar="NAME",
                   help="merge a preset over the recipe, e.g. --preset speed (repeatable)")
    p.add_argument("--allow-path", dest="allow", action="append", default=[], metavar="DIR",
                   help="let the recipe read files (presets, images, masks) under DIR too; by default it reads "
                        "only its own folder and ../presets (repeatable)")


def _server_opts(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--server", required=required, metavar="HOST:PORT",
                   help="ComfyUI server, e.g. localhost:8188 or https://comfy.example:443")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, only the module that adds it
    besides this one's own commands (a one-off `recipe run` need not import
    the importer, init's resources or the watch page)."""
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

    p = sub.add_parser("check", help="run the advisor: errors, warnings, and with --cost a cost estimate")
    _common(p)
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--cost", action="store_true", help="estimate where the time goes")
    p.add_argument("--compare", action="append", metavar="PRESET",
                   help="with --cost: compare against this preset (repeatable; default: every preset found)")
    p.add_argument("--out", default="out", help="run folders, to count encodes still cached (default: out)")
    p.add_argument("--profile", metavar="PATH", help="with --cost: per-unit costs fitted by `recipe profile` "
                                                      "(default: <out>/<recipe>/profile.json when present)")

    for module in _modules_for(command):
        module.add_commands(sub, _common, _server_opts)
    return parser


# The commands each module adds, and how to import it: each has
# add_commands(sub, common, server_opts) and a COMMANDS table. A new command
# family is one new module and one line here (tests/test_cli_table.py checks
# that the names match what the modules add). Literal import_module calls, so
# tests/test_import_rules.py sees these imports too.
COMMAND_MODULES: Mapping[Tuple[str, ...], Callable[[], ModuleType]] = MappingProxyType({
    ("run", "resume"): lambda: import_module("compiler.cli.run"),
    ("watch",): lambda: import_module("compiler.cli.watch"),
    ("export",): lambda: import_module("compiler.cli.export"),
    ("diff", "extract"): lambda: import_module("compiler.cli.ab"),
    ("profile",): lambda: import_module("compiler.cli.profile"),
    ("probe",): lambda: import_module("compiler.cli.probe"),
    ("import",): lambda: import_module("compiler.cli.importer"),
    ("init",): lambda: import_module("compiler.cli.init"),
})


def _modules_for(command: Optional[str]) -> List[ModuleType]:
    """The module of `command`: none for this module's own, every one for no
    command or one nobody adds (help, a typo: argparse then lists them all)."""
    if command in COMMANDS:
        return []
    loaders = [load for commands, load in COMMAND_MODULES.items() if command in commands] \
        or list(COMMAND_MODULES.values())
    return [load() for load in loaders]


def _command_of(argv: List[str]) -> Optional[str]:
    """The sub-command the user typed: the first word, unless it is an option."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def cmd_compile(args) -> int:
    done = compile_checked(args)
    if args.resolved:
        from compiler.resolve.written import resolved_yaml
        write_output(args.resolved, done.resolved or resolved_yaml(done.recipe), "resolved recipe")
    write_or_print(args.output, done.graph.to_json(), f" ({len(done.graph.nodes)} nodes)")
    return 0


def cmd_resolve(args) -> int:
    from compiler import pipeline
    from compiler.resolve.written import resolved_yaml
    sys.stdout.write(resolved_yaml(pipeline.resolve(args.file, args.overrides, args.presets,
                                                            allow=args.allow)))
    return 0


def cmd_check(args) -> int:
    from compiler.cli.ab import check_jobs
    done = compile_checked(args)
    recipe, graph = done.recipe, done.graph
    check_jobs(args)
    if args.cost:
        _print_cost(args, recipe, graph)
    print(f"ok: {recipe.source} passes the advisor's checks", file=sys.stderr)
    return 0


def _print_cost(args, recipe, graph) -> None:
    from compiler.check.cost import describe, estimate
    from compiler.run.folder import latest_graph
    calibration = _calibration(args, recipe)
    units = calibration.get("units") if calibration else None
    est = estimate(recipe, graph, latest_graph(args.out, recipe.name), units=units)
    print(f"cost estimate for {recipe.source} (1 unit = one model pass at 1024x1024):")
    for key, value in describe(recipe, est).items():
        print(f"  {key:<12} {value}")
    if calibration and calibration.get("seconds_per_unit"):
        print(f"  {'on server':<12} about {est.total * calibration['seconds_per_unit']:.0f} s of sampling on "
              f"{calibration.get('server', '?')} (calibrated by recipe profile: {calibration['_path']})")
    from compiler.resolve.presets import available_presets
    for name in args.compare if args.compare is not None else available_presets(args.file):
        other_args = argparse.Namespace(**{**vars(args), "presets": [*args.presets, name]})
        try:
            o = compile_checked(other_args, quiet=True)
        except RecipeError as exc:   # e.g. the schnell preset on an SDXL recipe
            print(f"  {name} preset: does not apply ({exc.lines()[0]})")
            continue
        other = estimate(o.recipe, o.graph)
        print(f"  {name} preset: {other.total / est.total:.2f}x this recipe's cost "
              f"({(other.sampling + other.hires + other.refine) / (est.sampling + est.hires + est.refine):.2f}x its sampling)")
    if any(c.loras for c in recipe.characters):
        _print_separation(args, recipe, graph)


def _print_separation(args, recipe, graph) -> None:
    """Each lowering's cost for this recipe beside the bleed measured for its family."""
    from compiler.check.bleed import separation_rows
    from compiler.check.cost import estimate

    def cost_of(sets) -> float:
        alt = argparse.Namespace(**{**vars(args), "overrides": [*args.overrides, *sets]})
        done = compile_checked(alt, quiet=True)
        return estimate(done.recipe, done.graph).total

    rows, note = separation_rows(recipe, cost_of, estimate(recipe, graph).total)
    print(f"separation against cost ({note}):")
    head = ("lowering", "cost", "latent leak", "share", "PNG leak", "LoRA effect")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _calibration(args, recipe) -> dict:
    """The profile.json `recipe profile` fitted: --profile PATH, else the one
    beside this recipe's run folders. {} when there is none."""
    import json
    from pathlib import Path
    path = Path(args.profile) if getattr(args, "profile", None) else Path(args.out, recipe.name, "profile.json")
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        if getattr(args, "profile", None):
            raise RecipeError("profile file not found", Location(str(path))) from None
        return {}
    except (OSError, ValueError) as exc:
        raise RecipeError(f"cannot read profile: {exc}", Location(str(path))) from None
    return {**data, "_path": str(path)} if isinstance(data, dict) else {}


def cmd_validate(args) -> int:
    from compiler.check.catalogue import check_graph
    catalogue = catalogue_from(args)
    done = compile_checked(args, catalogue=catalogue)
    recipe, graph = done.recipe, done.graph
    check_graph(graph, catalogue, recipe.locate)
    print(f"ok: {len(graph.nodes)} nodes fit the catalogue of {catalogue.origin}")
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"compile": cmd_compile, "resolve": cmd_resolve,
                                                    "validate": cmd_validate, "check": cmd_check})


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    args = build_parser(command).parse_args(argv)
    handlers = dict(COMMANDS)
    for module in _modules_for(args.command):
        handlers.update(module.COMMANDS)
    try:
        return handlers[args.command](args)
    except RecipeError as exc:
        for line in exc.lines():
            line = printable(line)
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
        print(f"internal error: {type(exc).__name__}: {printable(str(exc))} (set RECIPE_DEBUG=1 for a traceback, "
              f"and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
