"""`recipe import SOURCE`: a ComfyUI API graph, editor workflow or saved PNG
becomes a recipe. The importer (compiler.comfy.importer) maps the graph; this
command runs the advisor on what it mapped and writes the YAML."""
from __future__ import annotations

import sys
from typing import Callable, Dict, List, Tuple

import yaml

__all__ = ["COMMANDS", "add_commands", "recipe_yaml"]

# Small mappings written on one line, as the example recipes do.
_FLOW = frozenset({"canvas", "sampler", "strength", "region", "hires", "refine", "regions", "output", "image"})
_TOP_ORDER = ("version", "name", "model", "canvas", "image", "lora_mode", "refine", "regions", "characters",
              "scene", "negative", "sampler", "guidance", "hires", "output")


def add_commands(sub, common, server_opts) -> None:
    p = sub.add_parser("import", help="turn a ComfyUI workflow, API graph or saved PNG into a recipe")
    p.add_argument("source", metavar="SOURCE",
                   help="an API-format graph (.json), an editor workflow (.json), or a PNG ComfyUI saved")
    p.add_argument("-o", "--output", metavar="FILE", help="write the recipe here instead of stdout")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--object-info", metavar="PATH",
                       help="a saved GET /object_info answer: needed to read an editor workflow's widget values")
    group.add_argument("--server", metavar="HOST:PORT", help="ask this ComfyUI server for its node catalogue")
    p.add_argument("--partial", action="store_true",
                   help="write what maps, and list the rest in a comment block, instead of failing")


def cmd_import(args) -> int:
    from compiler.cli.common import catalogue_from, write_or_print
    from compiler.comfy.importer import ImportProblems, import_file, recipe_name
    catalogue = catalogue_from(args) if (args.object_info or args.server) else None
    imported = import_file(args.source, catalogue, recipe_name(args.output) if args.output else None)
    if imported.fatal:
        raise ImportProblems(args.source, imported.fatal + imported.problems)
    body = recipe_yaml(imported.document)
    warnings, errors = _advise(args, body)
    for line in warnings:
        print(line, file=sys.stderr)
    blocking = imported.lines() + errors
    if blocking and not args.partial:
        raise ImportProblems(args.source, imported.problems, errors + [
            f"{args.source}: no recipe written (recipe import --partial writes what maps and lists the rest in it)"])
    text = _header(imported) + body + _left_out(imported, errors if args.partial else [])
    write_or_print(args.output, text, f" (from {imported.kind}, {imported.nodes} nodes)")
    return 0


def _advise(args, body: str) -> Tuple[List[str], List[str]]:
    """(warnings, errors) of the advisor on the imported recipe, reported
    against SOURCE (or the recipe written) and its keys."""
    from compiler.check.advise import advise
    from compiler.errors import LowerError, RecipeError
    from compiler.ir.graph import Graph
    from compiler.lower import lower
    from compiler.resolve.loader import load_text
    from compiler.resolve.passes import Context, resolve_document
    from compiler.source import SourceMap
    where = args.output or args.source
    doc, _ = load_text(body, where)
    try:
        recipe = resolve_document(doc, Context(SourceMap(where), where))
    except RecipeError as exc:
        lines = exc.lines()
        if all("not found (looked at" in line for line in lines):   # a painted mask or picture not there yet
            return [f"warning: {line}" for line in lines], []
        return [], lines
    try:
        graph = lower(recipe)
    except LowerError:
        graph = Graph({})       # the advisor's gguf-hooks rule explains it, from the recipe alone
    findings = advise(recipe, graph)
    return ([f.format() for f in findings if f.level != "error"], [f.format() for f in findings if f.level == "error"])


def _header(imported) -> str:
    lines = [f"# Imported by `recipe import` from {imported.source} ({imported.kind}, {imported.nodes} nodes)."]
    if imported.notes:
        lines.append("# It compiles to the same picture; on the way:")
        lines += [f"#   - {note}" for note in imported.notes]
    return "\n".join(lines) + "\n"


def _left_out(imported, errors: List[str]) -> str:
    lines = [p.line() for p in imported.problems] + errors
    if not lines:
        return ""
    out = [f"# --partial: not mapped from {imported.source}, so not in this recipe:"]
    return "\n" + "\n".join(out + [f"#   {line}" for line in lines]) + "\n"


def recipe_yaml(doc: dict) -> str:
    """The document as a readable recipe: the schema's order, small mappings
    on one line, prompts protected from the template engine."""
    from compiler.resolve.templates import protect
    doc = dict(doc)
    for key in ("scene", "negative"):
        if isinstance(doc.get(key), str):
            doc[key] = protect(doc[key])
    doc["characters"] = {cid: {**c, "prompt": protect(c["prompt"])} for cid, c in (doc.get("characters") or {}).items()}
    out: List[str] = []
    for key in sorted(doc, key=lambda k: _TOP_ORDER.index(k) if k in _TOP_ORDER else len(_TOP_ORDER)):
        if out and key != "name":
            out.append("")
        out += _entry(key, doc[key], 0)
    return "\n".join(out) + "\n"


def _entry(key: str, value, depth: int) -> List[str]:
    pad = "  " * depth
    if isinstance(value, dict) and value and not (key in _FLOW and _flat(value)):
        return [f"{pad}{_scalar(key)}:"] + [line for k, v in value.items() for line in _entry(k, v, depth + 1)]
    if isinstance(value, list) and value and not _flat(value):
        return [f"{pad}{_scalar(key)}:"] + [f"{pad}  - {_flow(item)}" for item in value]
    return [f"{pad}{_scalar(key)}: {_flow(value)}"]


def _flat(value) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and _flat(v)) for v in items)


def _flow(value) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True,
                              width=1_000_000).strip()
    return _scalar(value)


def _scalar(value) -> str:
    text = yaml.safe_dump(value, allow_unicode=True, width=1_000_000)
    return text[:-len("\n...\n")] if text.endswith("\n...\n") else text.rstrip("\n")


COMMANDS: Dict[str, Callable] = {"import": cmd_import}
