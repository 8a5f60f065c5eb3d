"""CLI commands that talk to a server (run, resume). Filled in by the run stage."""
from __future__ import annotations

from typing import Callable, Dict

COMMANDS: Dict[str, Callable] = {}


def add_commands(sub, common, server_opts) -> None:
    return None
