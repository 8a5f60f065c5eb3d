"""Mutating a recipe document for property tests (test_fuzz, test_conforms):
a few of its values deleted or replaced, drawn by Hypothesis."""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator

from hypothesis import strategies as st


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path in a document of dicts and lists, the empty one first."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


def mutate(draw, doc: Any, rounds: int, value, delete: Callable[[Any, Any], bool]) -> Any:
    """A copy of `doc` after `rounds` mutations: at a drawn path, the value is
    deleted when `delete(draw, parent)` says so, else replaced by a draw from
    the strategy `value`. Stops early when nothing is left."""
    doc = json.loads(json.dumps(doc))
    for _ in range(rounds):
        found = [p for p in paths(doc) if p]
        if not found:
            break
        path = draw(st.sampled_from(found))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if delete(draw, parent):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(value)
    return doc

