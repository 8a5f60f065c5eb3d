"""Stage 5, check: does the graph fit a server's node catalogue (`/object_info`)?

The same checks ComfyUI's validation makes (REFERENCE.md A1), made before
anything is queued and reported against recipe keys: unknown node types,
missing required inputs, link targets and types, combo values (both the old
list style and the V3 COMBO style), numeric ranges, and model files the
server does not have, with the nearest name it does have.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, List, Mapping, Tuple

# Catalogue is the data (comfy/object_info.py); this module checks a graph against it.
from compiler.comfy.object_info import Catalogue, combo_options
from compiler.errors import CatalogueError, Location, RecipeError
from compiler.check.names import basename
from compiler.ir.graph import Graph, Link, Node
from compiler.resolve.schema import suggest

__all__ = ["check_graph", "absent_from", "CUSTOM_NODE_PACKS"]

# Where the non-core node types we emit come from, for a useful message.
CUSTOM_NODE_PACKS = MappingProxyType({"UnetLoaderGGUF": "ComfyUI-GGUF (city96)",
                                      "DualCLIPLoaderGGUF": "ComfyUI-GGUF (city96)"})

_FILE_KINDS = MappingProxyType({"unet_name": "diffusion model", "ckpt_name": "checkpoint", "lora_name": "LoRA",
               "vae_name": "VAE", "clip_name1": "text encoder", "clip_name2": "text encoder",
               "clip_name": "text encoder", "image": "input image"})
_MODEL_FILES = frozenset(_FILE_KINDS) - {"image"}


def check_graph(graph: Graph, catalogue: Catalogue, locate: Callable[[str], Location]) -> None:
    """Raise CatalogueError with every problem found, or return None."""
    problems: List[RecipeError] = []
    for node in graph:
        where = locate(node.origin)
        for message, hint in _check_node(node, graph, catalogue):
            problems.append(RecipeError(f"{message} (node {node.id})", where, hint))
    if problems:
        raise CatalogueError(problems)


def absent_from(graph: Graph, catalogue: Catalogue) -> List[Tuple[str, str]]:
    """What the graph needs that the catalogue lacks and the server could gain
    while we run: node classes, and model files named in file inputs (not
    wrong values, and not input images, which are uploaded just before the
    prompt). Pairs of (node id, class or file name)."""
    absent = []
    for node in graph:
        if catalogue.node(node.class_type) is None:
            absent.append((node.id, node.class_type))
            continue
        for name, value in node.inputs:
            spec = catalogue.input_spec(node.class_type, name) if name in _MODEL_FILES else None
            options = combo_options(spec) if spec else None
            if options is not None and not isinstance(value, Link) and value not in options:
                absent.append((node.id, str(value)))
    return absent


def _check_node(node: Node, graph: Graph, cat: Catalogue):
    info = cat.node(node.class_type)
    if info is None:
        pack = CUSTOM_NODE_PACKS.get(node.class_type)
        yield (f"node type {node.class_type} is not installed on the server",
               f"install the custom node {pack}" if pack else "")
        return
    spec = info.get("input", {})
    given = dict(node.inputs)
    for name in spec.get("required", {}):
        if name not in given:
            yield f"{node.class_type} needs input `{name}`", ""
    for name, value in node.inputs:
        ispec = cat.input_spec(node.class_type, name)
        if ispec is None:
            yield f"{node.class_type} has no input `{name}`", ""
        elif isinstance(value, Link):
            yield from _check_link(name, value, ispec, graph, cat)
        else:
            yield from _check_value(name, value, ispec)


def _check_link(name: str, link: Link, ispec: list, graph: Graph, cat: Catalogue):
    if link.node not in graph:
        yield f"input `{name}` links to a missing node {link.node}", ""
        return
    outputs = cat.outputs(graph[link.node].class_type)
    if not 0 <= link.index < len(outputs):
        yield f"input `{name}` links to output {link.index} of {link.node}, which has {len(outputs)}", ""
        return
    want, got = ispec[0], outputs[link.index]
    if isinstance(want, list) or want == "COMBO":
        return
    if not _types_match(got, want):
        yield f"input `{name}` wants {want} but {link.node} gives {got}", ""


def _types_match(got: str, want: str) -> bool:
    if "*" in (got, want):
        return True
    return bool(set(got.split(",")) & set(want.split(",")))


def _check_value(name: str, value: Any, ispec: list):
    options = combo_options(ispec)
    uploaded = len(ispec) > 1 and isinstance(ispec[1], dict) and ispec[1].get("image_upload")
    if options is not None:
        if value not in options and not uploaded:   # uploads arrive just before the prompt
            yield _combo_problem(name, value, options)
        return
    kind, opts = ispec[0], (ispec[1] if len(ispec) > 1 and isinstance(ispec[1], dict) else {})
    yield from _VALUE_CHECKS.get(kind, _no_check)(name, value, opts)


def _combo_problem(name: str, value: Any, options: List[Any]):
    kind = _FILE_KINDS.get(name)
    if kind:
        # Compare base names without their extension: every LoRA ends in
        # .safetensors, which would otherwise make any two names look alike,
        # and a server's subfolders (`characters/`, `characters\\`) are no part of the likeness.
        near = suggest(_stem(value), {_stem(o): str(o) for o in options})
        have = "the server has " + ", ".join(map(str, options[:6])) + (", ..." if len(options) > 6 else "")
        return f"{kind} file `{value}` is not on the server{near}", "" if near else have
    listed = ", ".join(map(str, options[:12])) + (", ..." if len(options) > 12 else "")
    return f"`{value}` is not a valid {name}{suggest(value, options)}", f"one of: {listed}"


def _stem(name: Any) -> str:
    return basename(str(name)).rsplit(".", 1)[0]


def _check_number(kind: type, label: str):
    def check(name: str, value: Any, opts: dict):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            yield f"input `{name}` must be {label}, not {value!r}", ""
            return
        if "min" in opts and value < opts["min"]:
            yield f"input `{name}` = {value} is below the minimum {opts['min']}", ""
        if "max" in opts and value > opts["max"]:
            yield f"input `{name}` = {value} is above the maximum {opts['max']}", ""
    return check


def _check_type(kind: type, label: str):
    def check(name: str, value: Any, opts: dict):
        if not isinstance(value, kind):
            yield f"input `{name}` must be {label}, not {value!r}", ""
    return check


def _no_check(name: str, value: Any, opts: dict):
    if isinstance(value, (dict, list)) and not (isinstance(value, dict) and "__value__" in value):
        yield f"input `{name}` has a value where a link is expected", ""


_VALUE_CHECKS: Mapping[str, Callable] = MappingProxyType({
    "INT": _check_number(int, "an integer"),
    "FLOAT": _check_number(float, "a number"),
    "BOOLEAN": _check_type(bool, "true or false"),    # the server would read "false" as True
    "STRING": _check_type(str, "text"),
})
