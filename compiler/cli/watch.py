"""CLI command for the edit loop: recipe watch."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from compiler.errors import Location, RecipeError

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("watch", help="re-run the recipe on every save and show the new image on a live page")
    common(p)
    server_opts(p, required=True)
    p.add_argument("--out", default="out", help="where run folders go (default: out)")
    p.add_argument("--keep", type=int, metavar="N",
                   help="keep only the newest N run folders of this session (and the one on show); "
                        "older ones it made are deleted, nothing else")
    p.add_argument("--no-page", action="store_true", help="no live page: one line per version")
    p.add_argument("--port", type=int, default=0, metavar="P",
                   help="serve the live page on 127.0.0.1:P (default: any free port, printed)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up on a version after S seconds without any news of it (default 600)")
    p.add_argument("--strict", action="store_true", help="treat advisor warnings as errors")
    p.set_defaults(total_timeout=None)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


def cmd_watch(args) -> int:
    from compiler.cli.common import cache_dir, client_for, compile_checked, server_catalogue
    from compiler.watch.loop import Runner, Session
    from compiler.watch.page import PageServer, WatchState
    if args.keep is not None and args.keep < 1:
        raise RecipeError(f"--keep must be at least 1, not {args.keep}")
    if not Path(args.file).is_file():   # a typo would otherwise be watched for ever
        raise RecipeError("file not found", Location(args.file))
    # Two clients: the loop's interrupt must not share a connection pool with
    # the run thread, which may be in the middle of a request.
    runner = Runner(client_for(args.server, args), client_for(args.server, args), Path(args.out),
                    WatchState(args.file), keep=args.keep, cache_dir=cache_dir(), show=_stdout, warn=_stderr)
    session = Session(args.file, lambda: compile_checked(args, catalogue=lambda graph: server_catalogue(runner.catalogues)),
                      runner, presets=args.presets, warn=_stderr)
    page = None if args.no_page else PageServer(session.state, args.port).start()
    if page is not None:
        _stderr(f"live page: {page.url}")
    _stderr(f"watching {', '.join(session.files)} (Ctrl-C to stop)")
    try:
        session.run(threading.Event())
    except KeyboardInterrupt:
        pass   # the way to stop watching; run() has interrupted our prompt in flight
    finally:
        if page is not None:
            page.close()
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"watch": cmd_watch})
