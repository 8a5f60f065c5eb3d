"""API graph -> ComfyUI editor (UI-format) workflow, and back.

The editor needs what the API format leaves out: integer node ids, positions,
explicit links, and widget values as a positional list in the node's
`input_order` (with the front end's extra "control_after_generate" value after
a seed). All of that comes from the node catalogue, so exporting needs one.
Nodes are laid out left to right by stage (depth from the loaders). Our
readable id becomes the node title; the recipe key goes in its properties.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from compiler.comfy.object_info import Catalogue, combo_options
from compiler.errors import CatalogueError, RecipeError
from compiler.ir.graph import Graph, Link

__all__ = ["to_ui", "from_ui"]

_WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
COLUMN, ROW = 380, 240


def _is_widget(spec: list) -> bool:
    return combo_options(spec) is not None or (bool(spec) and spec[0] in _WIDGET_TYPES)


def _ordered_inputs(cat: Catalogue, class_type: str) -> List[Tuple[str, list, bool]]:
    """(name, spec, required) in the node's input order."""
    info = cat.node(class_type) or {}
    spec = info.get("input", {})
    order = info.get("input_order") or {k: list(spec.get(k, {})) for k in ("required", "optional")}
    return [(name, spec.get(part, {}).get(name, []), part == "required")
            for part in ("required", "optional") for name in order.get(part, [])]


def _depths(graph: Graph) -> Dict[str, int]:
    memo: Dict[str, int] = {}

    def depth(node_id: str) -> int:
        if node_id not in memo:
            ups = [v.node for _, v in graph[node_id].inputs if isinstance(v, Link)]
            memo[node_id] = 1 + max((depth(u) for u in ups), default=-1)
        return memo[node_id]

    for node_id in graph.nodes:
        depth(node_id)
    return memo


def to_ui(graph: Graph, cat: Catalogue) -> dict:
    missing = [n.class_type for n in graph if cat.node(n.class_type) is None]
    if missing:
        raise CatalogueError([RecipeError(f"cannot export: node type {t} is not in the catalogue") for t in missing])
    ids = {node_id: i + 1 for i, node_id in enumerate(graph.nodes)}
    depth, rows = _depths(graph), {}
    links, nodes = [], []
    for n in graph:
        rows[depth[n.id]] = rows.get(depth[n.id], -1) + 1
        nodes.append(_ui_node(n, graph, ids, cat, links, (depth[n.id] * COLUMN, rows[depth[n.id]] * ROW)))
    for node in nodes:      # fill each output's list of links now that all are known
        for slot, out in enumerate(node["outputs"]):
            out["links"] = [l[0] for l in links if l[1] == node["id"] and l[2] == slot]
    return {"last_node_id": len(ids), "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


def _ui_node(n, graph: Graph, ids: dict, cat: Catalogue, links: list, pos: Tuple[int, int]) -> dict:
    given = dict(n.inputs)
    sockets, widgets = [], []
    for name, spec, required in _ordered_inputs(cat, n.class_type):
        if _is_widget(spec):
            widgets.append(given[name] if name in given else _default(spec))
            if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("control_after_generate"):
                widgets.append("fixed")      # the front end's seed control: keep the seed as given
        elif required or isinstance(given.get(name), Link):
            link = given.get(name)
            link_id = None
            if isinstance(link, Link):
                link_id = len(links) + 1
                out_type = cat.outputs(graph[link.node].class_type)[link.index]
                links.append([link_id, ids[link.node], link.index, ids[n.id], len(sockets), out_type])
            sockets.append({"name": name, "type": spec[0] if spec else "*", "link": link_id})
    outputs = cat.node(n.class_type).get("output", [])
    names = cat.node(n.class_type).get("output_name", outputs)
    return {"id": ids[n.id], "type": n.class_type, "title": n.id, "pos": list(pos), "size": [320, 120],
            "flags": {}, "order": ids[n.id] - 1, "mode": 0, "inputs": sockets,
            "outputs": [{"name": nm, "type": t, "links": [], "slot_index": i}
                        for i, (nm, t) in enumerate(zip(names, outputs))],
            "properties": {"Node name for S&R": n.class_type, "recipe_key": n.origin},
            "widgets_values": widgets}


def _default(spec: list):
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    choices = combo_options(spec)
    return opts.get("default", choices[0] if choices else None)


def from_ui(workflow: dict, cat: Catalogue) -> dict:
    """The API graph a UI workflow stands for (what the editor would queue)."""
    by_id = {node["id"]: node for node in workflow["nodes"]}
    link_src = {l[0]: (by_id[l[1]]["title"], l[2]) for l in workflow["links"]}
    api = {}
    for node in workflow["nodes"]:
        inputs, values = {}, list(node.get("widgets_values", []))
        for name, spec, _ in _ordered_inputs(cat, node["type"]):
            if _is_widget(spec):
                inputs[name] = values.pop(0)
                if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("control_after_generate"):
                    values.pop(0)
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                src, slot = link_src[socket["link"]]
                inputs[socket["name"]] = [src, slot]
        api[node["title"]] = {"class_type": node["type"], "inputs": inputs}
    return api
