"""`recipe export --ui FILE`: a workflow that opens in ComfyUI's editor."""
from __future__ import annotations

import json
from types import MappingProxyType
from typing import Callable, Mapping

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("export", help="write the graph as a ComfyUI editor (UI-format) workflow")
    common(p)
    p.add_argument("--ui", action="store_true", required=True, help="UI format (the only one for now)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--object-info", metavar="PATH", help="a saved GET /object_info answer")
    group.add_argument("--server", metavar="HOST:PORT", help="ask this ComfyUI server for its catalogue")


def cmd_export(args) -> int:
    from compiler.cli.common import catalogue_from, compile_checked, write_or_print
    from compiler.comfy.workflow import to_ui
    graph = compile_checked(args).graph
    text = json.dumps(to_ui(graph, catalogue_from(args)), indent=2, ensure_ascii=False) + "\n"
    write_or_print(args.output, text, f" ({len(graph.nodes)} nodes): drop it onto ComfyUI to open it")
    return 0


COMMANDS: Mapping[str, Callable] = MappingProxyType({"export": cmd_export})
