"""What the command modules share: the checked compile (compiler.pipeline,
with its findings printed), the catalogue named on the command line, the
client a command talks through, and output."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "catalogue_from", "client_for", "compile_checked", "write_output", "write_or_print"]


def compile_checked(args, strict: bool = False, quiet: bool = False):
    """pipeline.compile of the command line's recipe, --set and --preset:
    errors (and, with --strict, warnings) raise there; the warnings left go
    to stderr here. Every command that makes a graph goes through here."""
    from compiler import pipeline
    from compiler.errors import printable
    done = pipeline.compile(args.file, args.overrides, args.presets,
                            strict=strict or getattr(args, "strict", False), allow=getattr(args, "allow", ()))
    for f in done.findings if not quiet else ():
        print(printable(f.format()), file=sys.stderr)
    return done.recipe, done.graph


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
