"""A/B testing, part 2: the order ComfyUI's cache likes.

Under the default (classic) cache a prompt keeps only the previous prompt's
results (REFERENCE A5): a node runs again unless a node with the same
signature was in the prompt just before. So an order costs, per prompt, the
nodes whose signature the previous prompt lacked; and a model or LoRA load
costs more than any other node, so sharing those comes first.

`greedy_order` is nearest-neighbour on that overlap: start where the file
starts, then always take the job that shares the most (loaders and LoRAs,
then everything) with the one before. `nearest` is its single step, which a
sweep uses per server, so several servers each keep their own chain warm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from compiler.ir.graph import Graph
from compiler.ir.nodes import is_heavy

__all__ = ["Footprint", "footprint", "overlap", "reexecuted", "order_cost", "greedy_order", "nearest",
           "predicted"]


@dataclass(frozen=True)
class Footprint:
    """What a graph leaves in the cache: every node's signature, and the heavy ones apart."""
    sigs: Tuple[str, ...]          # one per node
    all: FrozenSet[str]
    heavy: FrozenSet[str]          # model loaders and LoRA nodes


def footprint(graph: Graph) -> Footprint:
    sigs = graph.signatures()
    return Footprint(tuple(sigs[n] for n in graph.nodes), frozenset(sigs.values()),
                     frozenset(sigs[n.id] for n in graph if is_heavy(n.class_type)))


def overlap(a: Footprint, b: Footprint) -> Tuple[int, int]:
    """How much of `b` a cache left by `a` serves: (heavy nodes, all nodes)."""
    return len(a.heavy & b.heavy), len(a.all & b.all)


def reexecuted(previous: Optional[Footprint], current: Footprint) -> int:
    """Nodes of `current` that run again after `previous` (all of them after nothing)."""
    if previous is None:
        return len(current.sigs)
    return sum(1 for s in current.sigs if s not in previous.all)


def order_cost(prints: Sequence[Footprint], order: Sequence[int]) -> int:
    """Re-executed nodes over a whole order, on one server with the classic cache."""
    total, previous = 0, None
    for i in order:
        total += reexecuted(previous, prints[i])
        previous = prints[i]
    return total


def nearest(previous: Optional[Footprint], candidates: Sequence[int],
            prints: Sequence[Footprint]) -> int:
    """The candidate that best follows `previous`; ties go to the earliest
    candidate, so the choice is stable (and nothing before it: the first)."""
    if previous is None:
        return candidates[0]
    best = max(range(len(candidates)), key=lambda k: (overlap(previous, prints[candidates[k]]), -k))
    return candidates[best]


def greedy_order(prints: Sequence[Footprint]) -> List[int]:
    remaining = list(range(len(prints)))
    order: List[int] = []
    previous: Optional[Footprint] = None
    while remaining:
        pick = nearest(previous, remaining, prints)
        remaining.remove(pick)
        order.append(pick)
        previous = prints[pick]
    return order


def predicted(prints: Sequence[Footprint], order: Sequence[int]) -> Dict[int, int]:
    """{job: nodes it re-executes} along `order`."""
    out, previous = {}, None
    for i in order:
        out[i] = reexecuted(previous, prints[i])
        previous = prints[i]
    return out
