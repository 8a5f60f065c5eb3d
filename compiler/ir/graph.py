"""The API-format graph under construction.

Node ids are readable and stable (`char.roxy.lora`, `sampler`) so a user can
read the JSON, diff two compiles, and map any server message back to the
recipe key that produced the node (`origin`). Insertion order is pipeline
order, and serialisation is byte-for-byte deterministic.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Tuple

__all__ = ["NodeRef", "Link", "Node", "Graph", "GraphBuilder"]


@dataclass(frozen=True)
class Link:
    node: str
    index: int

    def to_api(self) -> list:
        return [self.node, self.index]   # ComfyUI requires string ids in links (fact 16)


@dataclass(frozen=True)
class NodeRef:
    id: str

    def __getitem__(self, index: int) -> Link:
        return Link(self.id, index)


@dataclass(frozen=True)
class Node:
    id: str
    class_type: str
    inputs: Tuple[Tuple[str, Any], ...]
    origin: str          # the recipe key that made this node
    title: str

    def input(self, name: str, default: Any = None) -> Any:
        return dict(self.inputs).get(name, default)


class Graph:
    def __init__(self, nodes: Dict[str, Node]):
        self.nodes = nodes

    @classmethod
    def from_api(cls, api: dict) -> "Graph":
        """Read back a graph we wrote (graph.api.json): ids, inputs, origins."""
        nodes = {}
        for node_id, n in api.items():
            inputs = tuple((k, Link(v[0], v[1]) if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                            else (v["__value__"] if isinstance(v, dict) and "__value__" in v else v))
                           for k, v in n.get("inputs", {}).items())
            meta = n.get("_meta", {})
            nodes[node_id] = Node(node_id, n["class_type"], inputs, meta.get("recipe_key", ""),
                                  meta.get("title", node_id))
        return cls(nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nodes

    def origin(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node.origin if node else ""

    def to_api(self) -> dict:
        return {n.id: {"class_type": n.class_type,
                       "inputs": {k: _api_value(v) for k, v in n.inputs},
                       "_meta": {"title": n.title, "recipe_key": n.origin}}
                for n in self.nodes.values()}

    def to_json(self) -> str:
        return json.dumps(self.to_api(), indent=2, ensure_ascii=False) + "\n"

    def signatures(self) -> Dict[str, str]:
        """Content signature of every node: class, constants and the
        signatures of its inputs, but not its id. The same idea as ComfyUI's
        output cache key (REFERENCE A5), so two graphs share a node's result
        exactly when they share its signature."""
        memo: Dict[str, str] = {}

        def sig(node_id: str) -> str:
            if node_id not in memo:
                node = self.nodes[node_id]
                parts = [node.class_type] + [
                    f"{k}=<{sig(v.node)}>[{v.index}]" if isinstance(v, Link) else f"{k}={json.dumps(v, sort_keys=True)}"
                    for k, v in sorted(node.inputs, key=lambda kv: kv[0])]
                memo[node_id] = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]
            return memo[node_id]

        for node_id in self.nodes:
            sig(node_id)
        return memo

    def links(self) -> List[Tuple[str, str, Link]]:
        """(node id, input name, link) for every link in the graph."""
        return [(n.id, k, v) for n in self.nodes.values() for k, v in n.inputs if isinstance(v, Link)]


def _api_value(value: Any) -> Any:
    if isinstance(value, Link):
        return value.to_api()
    if isinstance(value, (list, tuple)):
        return {"__value__": list(value)}   # a bare 2-list would be read as a link
    return value


class GraphBuilder:
    def __init__(self) -> None:
        self._nodes: Dict[str, Node] = {}

    def add(self, node_id: str, class_type: str, origin: str, title: str = "", **inputs: Any) -> NodeRef:
        if node_id in self._nodes:
            raise ValueError(f"duplicate node id {node_id}")   # a lowering bug, not a user error
        clean = tuple((k, v) for k, v in inputs.items() if v is not None)
        self._nodes[node_id] = Node(node_id, class_type, clean, origin, title or node_id)
        return NodeRef(node_id)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._nodes

    def get(self, node_id: str) -> Node:
        return self._nodes[node_id]

    def build(self) -> Graph:
        return Graph(dict(self._nodes))
