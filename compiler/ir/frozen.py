"""Constant tables that nobody can change behind another's back.

A module-level table is shared by every caller in the process; handing out
one of its dicts lets one recipe's edit become the next recipe's default.
So tables are built with `freeze` (mappings -> MappingProxyType, lists ->
tuples, sets -> frozensets) and a stage that needs a plain, editable copy
asks for one with `thaw`.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["freeze", "thaw"]


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become MappingProxyType, lists tuples, sets frozensets."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    return value


def thaw(value: Any) -> Any:
    """A plain, unshared deep copy: mappings become dicts and tuples lists, the
    shapes a loaded YAML document has."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
