"""CLI command that reads run folders: profile."""
from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Callable, Mapping

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("profile", help="measured against estimated cost for run folders, and the per-unit "
                                       "costs of their server")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run folders of one server (each has run.json, graph.api.json, recipe.resolved.yaml)")
    p.add_argument("--save", metavar="PATH",
                   help="write the fitted constants here (default: profile.json beside the first RUN_DIR)")


def cmd_profile(args) -> int:
    from compiler.run.profile import profile
    _, text, target = profile(args.run_dirs, args.save)
    print(text)
    print(f"wrote {target}", file=sys.stderr)
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"profile": cmd_profile})
