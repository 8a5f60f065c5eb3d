"""The source graph as the importer reads it, and the walk that claims its nodes.

`SourceGraph` is an API-format graph checked once: every link resolves and
there is no cycle. `Walk` follows links from the output back, claiming each
node it recognises; a node it cannot map becomes a `Problem` naming that node.
What the walk never reached, but the output depends on, is reported too, so
nothing the source does is dropped without a line saying so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from compiler.comfy.importer.known import KNOWN
from compiler.errors import Location, RecipeError

__all__ = ["Ref", "SNode", "SourceGraph", "Problem", "Walk", "ImportProblems", "PRIMITIVES"]

# Core primitive nodes (comfy_extras/nodes_primitive.py): a link from one is its value.
PRIMITIVES = frozenset({"PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline",
                        "PrimitiveBoolean"})


@dataclass(frozen=True)
class Ref:
    node: str
    slot: int


@dataclass(frozen=True)
class SNode:
    id: str
    class_type: str
    inputs: Tuple[Tuple[str, Any], ...]     # link values are Refs
    hint: str = ""                          # _meta.recipe_key, when the compiler made the graph

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.inputs).get(name, default)

    @property
    def label(self) -> str:
        return f"node {self.id} ({self.class_type})"


@dataclass(frozen=True)
class Problem:
    node: str
    class_type: str
    message: str
    kind: str = "not mapped"

    def line(self, source: str = "") -> str:
        return f"{source + ': ' if source else ''}node {self.node} ({self.class_type}): {self.kind}: {self.message}"


class ImportProblems(RecipeError):
    """What stops an import, one line per node (exit 2)."""

    def __init__(self, source: str, problems: Iterable[Problem], extra: Iterable[str] = ()):
        self.problem_lines = [p.line(source) for p in problems] + list(extra)
        super().__init__(self.problem_lines[0] if self.problem_lines else "nothing to import", None)

    def lines(self) -> list:
        return list(self.problem_lines)


def _link(value: Any, ids) -> bool:
    """["5", 0]; hand-written graphs sometimes say [5, 0]."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) \
        and not isinstance(value[1], bool) and (isinstance(value[0], str) or (
            isinstance(value[0], int) and not isinstance(value[0], bool) and str(value[0]) in ids))


class SourceGraph:
    def __init__(self, api: Any, source: str):
        self.source = source
        if not isinstance(api, dict) or not api:
            raise RecipeError("not a ComfyUI graph: no nodes", Location(source))
        self.nodes: Dict[str, SNode] = {}
        self.ids = {str(k) for k in api}
        for node_id, raw in api.items():
            self.nodes[str(node_id)] = self._node(str(node_id), raw)
        self._check_links()
        self.order = self._topological()

    def _node(self, node_id: str, raw: Any) -> SNode:
        if not isinstance(raw, dict) or not isinstance(raw.get("class_type"), str):
            raise RecipeError(f"node {node_id} has no class_type: not an API-format graph", Location(self.source))
        inputs = raw.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise RecipeError(f"node {node_id} ({raw['class_type']}): its inputs are not a mapping",
                              Location(self.source))
        values = tuple((k, Ref(str(v[0]), v[1]) if _link(v, self.ids) else
                        (v["__value__"] if isinstance(v, dict) and "__value__" in v else v))
                       for k, v in inputs.items())
        meta = raw.get("_meta") if isinstance(raw.get("_meta"), dict) else {}
        return SNode(node_id, raw["class_type"], values, str(meta.get("recipe_key") or ""))

    def _check_links(self) -> None:
        for node in self.nodes.values():
            for name, value in node.inputs:
                if isinstance(value, Ref) and value.node not in self.nodes:
                    raise RecipeError(f"{node.label}: input `{name}` links to node {value.node}, which is not "
                                      "in the graph (a dangling link)", Location(self.source))

    def _topological(self) -> List[str]:
        """Node ids, each after everything it reads; a cycle is an error."""
        state: Dict[str, int] = {}
        order: List[str] = []
        for start in self.nodes:
            if state.get(start):
                continue
            stack = [(start, iter(self.ups(start)))]
            state[start] = 1
            path = [start]
            while stack:
                node_id, ups = stack[-1]
                nxt = next(ups, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node_id] = 2
                    order.append(node_id)
                elif state.get(nxt) == 1:
                    loop = path[path.index(nxt):] + [nxt]
                    raise RecipeError("the graph has a cycle: " + " -> ".join(self.nodes[n].label for n in loop),
                                      Location(self.source))
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self.ups(nxt))))
        return order

    def ups(self, node_id: str) -> List[str]:
        return [v.node for _, v in self.nodes[node_id].inputs if isinstance(v, Ref)]

    def ancestors(self, node_id: str) -> set:
        seen, todo = set(), [node_id]
        while todo:
            for up in self.ups(todo.pop()):
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        return seen


@dataclass
class Walk:
    """The claims and problems of one import."""
    graph: SourceGraph
    claimed: set = field(default_factory=set)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    fatal: List[Problem] = field(default_factory=list)
    memo: Dict[Any, Any] = field(default_factory=dict)     # per-walk results by (what, ref)

    def node(self, ref: Optional[Ref]) -> Optional[SNode]:
        return self.graph.nodes[ref.node] if isinstance(ref, Ref) else None

    def remembered(self, key: Any, compute: Callable[[], Any]) -> Any:
        """compute() once per walk for `key` (a node reached twice is read once)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def take(self, ref: Any, classes: Iterable[str], role: str) -> Optional[SNode]:
        """The node at `ref` when it is one of `classes` (claimed), else a
        problem at that node and None."""
        node = self.node(ref)
        if node is None:
            return None
        if node.class_type not in classes:
            self.unmapped(node, role)
            return None
        self.claimed.add(node.id)
        return node

    def unmapped(self, node: SNode, role: str) -> None:
        why = role if node.class_type in KNOWN else \
            f"{role}; the importer does not read `{node.class_type}`"
        self.problem(node, why)

    def problem(self, node: SNode, message: str, kind: str = "not mapped") -> None:
        """One line per node: the first reason found is the one reported."""
        if not any(p.node == node.id for p in self.problems):
            self.problems.append(Problem(node.id, node.class_type, message, kind))

    def number(self, node: SNode, name: str, default: float) -> float:
        value = self.value(node, name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(node, f"`{name}` is {value!r}, not a number")
            return default
        return value

    def integer(self, node: SNode, name: str, default: int = 0) -> int:
        value = self.value(node, name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(node, f"`{name}` is {value!r}, not a whole number")
            return default
        return value

    def link(self, node: SNode, name: str) -> Optional[Ref]:
        """A link input the shape needs; a problem at `node` when it is missing."""
        ref = node.get(name)
        if isinstance(ref, Ref):
            return ref
        self.problem(node, f"input `{name}` is not connected" if ref is None else
                     f"input `{name}` is {ref!r}, where a link belongs")
        return None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def value(self, node: SNode, name: str, default: Any = None) -> Any:
        """A constant input; a link from a core primitive node is its value."""
        value = node.get(name, default)
        if isinstance(value, Ref):
            src = self.graph.nodes[value.node]
            if src.class_type in PRIMITIVES:
                self.claimed.add(src.id)
                return src.get("value", default)
            self.unmapped(src, f"feeds `{name}` of {node.label}, where a recipe has a plain value")
            return default
        return value

    def leftovers(self, output: str) -> List[Problem]:
        """Nodes the output depends on that no shape claimed, except the
        inputs of a node already reported."""
        reported = {p.node for p in self.problems + self.fatal}
        covered = set(reported)
        for node_id in reported:
            covered |= self.graph.ancestors(node_id)
        used = self.graph.ancestors(output)
        return [Problem(n, self.graph.nodes[n].class_type, "not part of any shape a recipe makes")
                for n in self.graph.order if n in used and n not in self.claimed and n not in covered]
