"""What the command modules share: the checked compile (compiler.pipeline,
with its findings printed), the catalogue named on the command line, the
client a command talks through, and output."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "catalogue_from", "client_for", "client_opts", "compile_checked", "server_catalogue",
           "write_output", "write_or_print"]


def compile_checked(args, strict: bool = False, quiet: bool = False, catalogue=None):
    """pipeline.compile of the command line's recipe, --set and --preset:
    errors (and, with --strict, warnings) raise there; the notices (model
    names completed from `catalogue`) and warnings left go to stderr here.
    Every command that makes a graph goes through here. `catalogue` may be a
    function of the compiled graph that fetches one: it is called only once
    the recipe compiled, so a refused recipe costs no server a request.
    Returns the pipeline.Compiled (recipe, graph, resolved text...)."""
    from compiler import pipeline
    from compiler.cache import default_cache
    from compiler.errors import printable
    strict = strict or getattr(args, "strict", False)
    done = pipeline.compile(args.file, args.overrides, args.presets, strict=strict, allow=getattr(args, "allow", ()),
                            cache=default_cache())
    catalogue = catalogue(done.graph) if callable(catalogue) else catalogue
    if catalogue is not None:
        done = pipeline.complete_names(done, catalogue, strict)
    for f in (*done.notices, *done.findings) if not quiet else ():
        print(printable(f.format()), file=sys.stderr)
    return done


def server_catalogue(provider, graph=None):
    """The server's catalogue for completing model names, or None when it
    cannot answer now: the run then fails, and is recorded, where it always did.
    With `graph`, the provider is asked for what that graph needs (a per-class
    one fetches only its classes); without, for what it holds."""
    from compiler.errors import RunError
    try:
        return provider.for_graphs([graph]) if graph is not None else provider.get()
    except RunError:
        return None


def catalogue_from(args):
    """The node catalogue named by --object-info PATH or --server HOST:PORT."""
    from compiler.comfy.object_info import Catalogue
    if args.object_info:
        return Catalogue.from_file(args.object_info)
    from compiler.comfy.client import ComfyClient
    return Catalogue(ComfyClient(args.server).object_info(), args.server)


def write_output(path, text: str, what: str) -> None:
    """Write `text` to the file named on the command line: a folder, or a place
    that cannot be written, is one line and exit 2, not a traceback."""
    from compiler.errors import Location, RecipeError
    from compiler.files import write_atomic
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise RecipeError(f"cannot write the {what} here: {exc.strerror or exc}", Location(str(path))) from None


def write_or_print(path, text: str, note: str = "", what: str = "graph") -> None:
    """Write `text` atomically to `path`, or print it to stdout when no path."""
    if path:
        write_output(path, text, what)
        print(f"wrote {path}{note}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def client_for(server: str, args):
    from compiler.comfy.address import Timeouts
    from compiler.comfy.client import ComfyClient
    # A short --timeout also bounds each HTTP answer: a hung server is no news either.
    return ComfyClient(server, timeouts=Timeouts(read=min(30.0, args.timeout), idle=args.timeout,
                                                 total=args.total_timeout))


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recipe" / "object_info"


def client_opts(p) -> None:
    """--out, --timeout, --total-timeout, --plain: every command that runs prompts."""
    p.add_argument("--out", default="out", help="where run folders go (default: out)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up after S seconds without any news of the prompt (default 600)")
    p.add_argument("--total-timeout", type=float, default=None, metavar="S",
                   help="give up after S seconds in all (default: no limit)")
    p.add_argument("--plain", action="store_true", help="one line per node instead of progress bars")
