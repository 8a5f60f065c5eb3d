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
from compiler.errors import CatalogueError, Location, RecipeError
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


# The front end's own nodes: never queued (graphToPrompt leaves them out).
_VIRTUAL = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
MUTED, BYPASSED = 2, 4
_SEED_CONTROLS = frozenset({"fixed", "increment", "decrement", "randomize"})


def from_ui(workflow: dict, cat: Catalogue, origin: str = "workflow") -> dict:
    """The API graph a UI workflow stands for, as the editor would queue it.

    Nodes are keyed by their id (as a string) and typed by `type`, never by
    title: real workflows rarely have titles. As the front end does: links
    through a Reroute go to its source, a PrimitiveNode's value is inlined,
    notes are left out, muted nodes (mode 2) are dropped (their consumers lose
    that input) and bypassed ones (mode 4) pass their input of the same type
    through. A node type the catalogue lacks keeps its links, and its raw
    values in `_meta.widgets_values`, for the caller to report."""
    nodes, links = _ui_tables(workflow, origin)
    api = {}
    for node in nodes.values():
        if node["type"] in _VIRTUAL or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        api[str(node["id"])] = _api_node(node, nodes, links, cat, origin)
    return api


def _ui_tables(workflow: dict, origin: str):
    bad = RecipeError("not a ComfyUI editor workflow: it needs a `nodes` list of {id, type}", Location(origin))
    raw_nodes = workflow.get("nodes") if isinstance(workflow, dict) else None
    if not isinstance(raw_nodes, list) or not all(isinstance(n, dict) and "id" in n and isinstance(n.get("type"), str)
                                                  for n in raw_nodes):
        raise bad
    links = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):     # the 1.0 schema writes links as objects
            link = [link.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")]
        if isinstance(link, list) and len(link) >= 5:
            links[link[0]] = link
    return {n["id"]: n for n in raw_nodes}, links


def _source(link_id, nodes: dict, links: dict, origin: str, depth: int = 0):
    """What a link delivers: ("link", [id, slot]), ("value", v), or None (from a muted node)."""
    link = links.get(link_id)
    if link is None or link[1] not in nodes:
        raise RecipeError(f"link {link_id} leads to a node that is not in the workflow", Location(origin))
    if depth > len(nodes):
        raise RecipeError("the workflow's Reroutes or bypassed nodes form a cycle", Location(origin))
    src, slot = nodes[link[1]], link[2]
    if src.get("mode", 0) == MUTED:
        return None
    if src["type"] == "PrimitiveNode":
        return ("value", (src.get("widgets_values") or [None])[0])
    if src["type"] == "Reroute" or src.get("mode", 0) == BYPASSED:
        upstream = _through(src, slot, link[5] if len(link) > 5 else None)
        return None if upstream is None else _source(upstream, nodes, links, origin, depth + 1)
    return ("link", [str(src["id"]), slot])


def _through(node: dict, slot: int, wanted) -> object:
    """The link a Reroute or bypassed node passes on for output `slot`: the
    input at the same index when its type matches, else the first of that type."""
    sockets = [s for s in node.get("inputs") or [] if isinstance(s, dict)]
    if node["type"] == "Reroute":
        return sockets[0].get("link") if sockets else None
    outputs = node.get("outputs") or []
    wanted = outputs[slot].get("type") if slot < len(outputs) and isinstance(outputs[slot], dict) else wanted
    same = [s for i, s in enumerate(sockets) if i == slot and s.get("type") == wanted] + \
        [s for s in sockets if s.get("type") == wanted]
    return next((s.get("link") for s in same if s.get("link") is not None), None)


def _api_node(node: dict, nodes: dict, links: dict, cat: Catalogue, origin: str) -> dict:
    meta = {"title": node.get("title") or node["type"]}
    key = (node.get("properties") or {}).get("recipe_key")
    if key:
        meta["recipe_key"] = key
    inputs = {}
    if cat.node(node["type"]) is None:
        meta["widgets_values"] = node.get("widgets_values")
    else:
        inputs = _widget_inputs(node, cat, origin)
    for socket in node.get("inputs") or []:
        if not isinstance(socket, dict) or socket.get("link") is None:
            continue
        got = _source(socket["link"], nodes, links, origin)
        if got is None:
            inputs.pop(socket.get("name"), None)
        else:
            inputs[socket.get("name")] = got[1]
    return {"class_type": node["type"], "inputs": inputs, "_meta": meta}


def _widget_inputs(node: dict, cat: Catalogue, origin: str) -> dict:
    """widgets_values -> {input name: value}, in the catalogue's input order,
    skipping the front end's extra values (a seed's control_after_generate,
    an image input's upload button)."""
    raw = node.get("widgets_values")
    if isinstance(raw, dict):      # some nodes save their widgets by name
        return {k: v for k, v in raw.items() if cat.input_spec(node["type"], k) is not None}
    values, inputs, upload = list(raw or []), {}, False
    for name, spec, required in _ordered_inputs(cat, node["type"]):
        if not _is_widget(spec):
            continue
        if not values:
            if required:
                raise RecipeError(f"node {node['id']} ({node['type']}): its widget values stop before `{name}`: "
                                  "is the catalogue from the ComfyUI that saved this workflow?", Location(origin))
            break
        inputs[name] = values.pop(0)
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if values and (opts.get("control_after_generate") or name in ("seed", "noise_seed")) \
                and values[0] in _SEED_CONTROLS:
            values.pop(0)
        upload = upload or bool(opts.get("image_upload"))
    if upload and values and values[0] in ("image", None, ""):   # the upload button's value comes last
        values.pop(0)
    if values:
        raise RecipeError(f"node {node['id']} ({node['type']}): {len(values)} widget value(s) more than the "
                          f"catalogue's {node['type']} has: is the catalogue from the ComfyUI that saved this "
                          "workflow?", Location(origin))
    return inputs
