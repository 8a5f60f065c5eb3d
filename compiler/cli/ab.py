"""CLI for A/B testing: `recipe diff`, `recipe extract`, and the sweep side of
`recipe run FILE --variant NAME ... | --sweep` (cli_run branches here)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from compiler.errors import Location, RecipeError

__all__ = ["COMMANDS", "add_commands", "run_jobs"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("diff", help="what differs between two resolved recipes, key by key")
    for side in ("a", "b"):
        p.add_argument(side, metavar=side.upper(),
                       help="a recipe file, a run folder, or git:REV:path (e.g. git:HEAD~1:recipes/portrait.yaml)")

    p = sub.add_parser("extract", help="print the resolved recipe stored in an image that `recipe run` saved")
    p.add_argument("image", help="a PNG from a run folder")
    p.add_argument("-o", "--output", metavar="FILE", help="write the recipe here instead of stdout")


def cmd_diff(args) -> int:
    from compiler.diff import diff_documents, load_side
    a_name, a = load_side(args.a)
    b_name, b = load_side(args.b)
    changes = diff_documents(a, b)
    for change in changes:
        print(change.format())
    if not changes:
        print("no differences")
    else:
        print(f"{len(changes)} difference{'s' if len(changes) != 1 else ''} from {a_name} to {b_name}",
              file=sys.stderr)
    return 0


def extract_recipe(path: str) -> str:
    """The resolved recipe YAML in a PNG's `recipe` text chunk (ComfyUI JSON-encodes
    every extra_pnginfo value, REFERENCE A4)."""
    from PIL import Image, UnidentifiedImageError
    where = Location(path)
    try:
        with Image.open(path) as img:
            text = getattr(img, "text", None) or img.info
            raw = text.get("recipe")
    except FileNotFoundError:
        raise RecipeError("file not found", where) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise RecipeError(f"not an image Pillow can read ({exc})", where) from None
    if raw is None:
        raise RecipeError("no `recipe` metadata in this image (was it saved by `recipe run`, "
                          "on a server without --disable-metadata?)", where)
    try:
        recipe = json.loads(raw)
    except ValueError:
        raise RecipeError("the `recipe` metadata is not JSON", where) from None
    if not isinstance(recipe, str):
        raise RecipeError("the `recipe` metadata is not a recipe (expected a JSON string of YAML)", where)
    return recipe


def cmd_extract(args) -> int:
    from compiler.cli.common import write_or_print
    write_or_print(args.output, extract_recipe(args.image))
    return 0


# -- recipe run --variant / --sweep --------------------------------------------------------

MAX_CHECKED_JOBS = 256   # `recipe check` of a sweep: enough to meet every axis value, not a 1000-job run


def check_jobs(args) -> int:
    """`recipe check` of a recipe with `variants:` / `sweep:`: every variant
    and (up to MAX_CHECKED_JOBS of) the sweep's jobs compiled, so a typo there
    is found now, not at `run --variant`. Returns how many jobs were checked."""
    from compiler import pipeline
    from compiler.ab.variants import compile_job, load_spec, plan_jobs
    from compiler.errors import SchemaError
    loaded = pipeline.load(args.file, args.presets, allow=getattr(args, "allow", ()))
    variants, sweep, _ = load_spec(loaded)
    plans = ([plan_jobs(loaded, list(variants))] if variants else []) + ([plan_jobs(loaded, (), True)] if sweep else [])
    jobs = [job for plan in plans for job in plan.jobs][:MAX_CHECKED_JOBS]
    problems = []
    for job in jobs:
        try:
            compile_job(loaded, job, args.overrides, args.strict)
        except RecipeError as exc:
            problems.extend(getattr(exc, "errors", None) or [exc])
    if problems:
        raise SchemaError(problems)
    return len(jobs)


def compile_jobs(args, planned: Callable[[], object] = lambda: None, catalogue=None) -> tuple:
    """(plan, compiled jobs): every job resolved, lowered and advised before
    anything is queued, so a bad value in job 5 costs no server time. The
    recipe and its presets are read once; each job compiles from a copy.
    `planned` runs once the jobs are known, before any is resolved. Then,
    with a server's catalogue (`catalogue()`, asked only once every job
    compiled), model names are completed from it."""
    from compiler import pipeline
    from compiler.ab.sweep import Compiled
    from compiler.ab.variants import compile_job, job_error, plan_jobs
    from compiler.check.names import match_names
    from compiler.diff import diff_documents
    loaded = pipeline.load(args.file, args.presets, allow=getattr(args, "allow", ()))
    plan = plan_jobs(loaded, args.variants, args.sweep)
    planned()
    done = [compile_job(loaded, job, args.overrides, args.strict) for job in plan.jobs]
    server = catalogue() if catalogue is not None else None
    base = pipeline.resolve(loaded, args.overrides)
    base = (match_names(base, server)[0] if server is not None else base).document   # names are no difference
    compiled, warnings = [], []
    for job, d in zip(plan.jobs, done):
        try:
            d = pipeline.complete_names(d, server, args.strict) if server is not None else d
        except RecipeError as exc:
            raise job_error(exc, job) from None
        warnings += [f.format() for f in (*d.notices, *d.findings) if f.format() not in warnings]
        compiled.append(Compiled(job, d.recipe, d.graph,
                                 [c.to_json() for c in diff_documents(base, d.recipe.document)]))
    for line in warnings:
        print(line, file=sys.stderr)
    return plan, compiled


def run_jobs(args, make_client: Callable, cache_dir: Path) -> int:
    from compiler.ab.sweep import check_servers, run_sweep
    # A wrong --variant is said first; then, before resolving every job and
    # writing anything, that some server answers.
    held: dict = {}   # the catalogue fetched to complete model names: its lane checks against it
    plan, compiled = compile_jobs(args, planned=lambda: check_servers(args.server, make_client),
                                  catalogue=lambda: _first_catalogue(args.server, make_client, cache_dir, held))
    say = lambda text: print(text, file=sys.stderr, flush=True)   # noqa: E731
    sweep = run_sweep(plan, compiled, args.server, make_client, Path(args.out), say=say,
                      cache_dir=cache_dir, held=held)
    print(sweep.folder)
    bad = [j for j in sweep.data["jobs"] if j["status"] != "success"]
    if bad:
        say(f"{len(bad)} of {len(compiled)} jobs did not succeed: "
            + ", ".join(f"{j['label']} ({j['status']})" for j in bad[:5]) + ("…" if len(bad) > 5 else ""))
        return 1
    say(f"all {len(compiled)} jobs succeeded: {sweep.folder / 'report.html'}")
    return 0


def _first_catalogue(servers, make_client: Callable, cache_dir: Path, held: dict):
    """The catalogue of the first server that answers, to complete model names
    with, also kept in `held` by server; None when none answers (the sweep
    then reports its servers as ever)."""
    from compiler.cli.common import server_catalogue
    from compiler.run.catalogues import CatalogueProvider
    for server in servers:
        catalogue = server_catalogue(CatalogueProvider(make_client(server), cache_dir))
        if catalogue is not None:
            held[server] = catalogue
            return catalogue
    return None


COMMANDS: Mapping[str, Callable] = MappingProxyType({"diff": cmd_diff, "extract": cmd_extract})
