"""What the command modules share: the checked compile (compiler.pipeline,
with its findings printed), the catalogue named on the command line, the
client a command talks through, and output."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "catalogue_from", "client_for", "compile_checked", "write_or_print"]


def compile_checked(args, strict: bool = False, quiet: bool = False):
    """pipeline.compile of the command line's recipe, --set and --preset:
    errors (and, with --strict, warnings) raise there; the warnings left go
    to stderr here. Every command that makes a graph goes through here."""
    from compiler import pipeline
    from compiler.cache import default_cache
    done = pipeline.compile(args.file, args.overrides, args.presets,
                            strict=strict or getattr(args, "strict", False), cache=default_cache())
    for f in done.findings if not quiet else ():
        print(f.format(), file=sys.stderr)
    return done.recipe, done.graph


def catalogue_from(args):
    """The node catalogue named by --object-info PATH or --server HOST:PORT."""
    from compiler.comfy.object_info import Catalogue
    if args.object_info:
        return Catalogue.from_file(args.object_info)
    from compiler.comfy.client import ComfyClient
    return Catalogue(ComfyClient(args.server).object_info(), args.server)


def write_or_print(path, text: str, note: str = "") -> None:
    """Write `text` atomically to `path`, or print it to stdout when no path."""
    from compiler.files import write_atomic
    if path:
        write_atomic(path, text)
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
