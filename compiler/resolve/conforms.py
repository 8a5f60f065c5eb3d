"""Does a document conform to a schema? A yes/no answer without jsonschema.

Importing jsonschema costs about 60 ms (its format checkers and the bundled
metaschemas), more than the rest of a cold `recipe compile` together
(issue 12). Almost every recipe a person compiles is valid, and a valid one
needs no messages, so schema.validate asks this module first and builds
jsonschema's validator only for a document that does not conform, to word
what is wrong.

It speaks exactly the keywords recipe.schema.json uses, with the recipe
schema's two strict rules (an integer is an int, not 512.0; a pattern's `$`
is the end of the string), and answers as jsonschema's Draft 2020-12 does:
tests/test_conforms.py compares the two on every example, every bad case
and random documents. Anything outside that subset (a keyword it does not
know, a mapping key that is not a string, a value no YAML-to-JSON mapping
gives) raises Unsure, and the caller asks jsonschema instead.
"""
from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Callable, Mapping

__all__ = ["conforms", "Unsure"]


class Unsure(Exception):
    """This module cannot answer for this schema or document: ask jsonschema."""


_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "$comment", "default", "examples",
                          "deprecated", "readOnly", "writeOnly", "markdownDescription"})
_END = re.compile(r"(?<!\\)\$$")   # a final unescaped `$`: schema.strict_pattern's rule


def conforms(schema: Any, instance: Any) -> bool:
    """True when `instance` is valid against `schema`, False when it is not.
    Raises Unsure where it cannot tell."""
    if schema is True or schema is False:
        return schema
    if not isinstance(schema, dict):
        raise Unsure("a schema that is not an object")
    for keyword, value in schema.items():
        check = _KEYWORDS.get(keyword)
        if check is None:
            if keyword in _ANNOTATIONS:
                continue
            raise Unsure(f"keyword {keyword}")
        if not check(value, instance, schema):
            return False
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Unsure("NaN or infinity")   # jsonschema's bounds let NaN through; ours do not
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Unsure("a mapping key that is not a string")
        return "object"
    raise Unsure(f"a {type(value).__name__} value")


def _type(expected, instance, _schema) -> bool:
    kind = _json_type(instance)
    names = [expected] if isinstance(expected, str) else list(expected)
    # "number" takes integers too; "integer" takes ints only (the recipe schema's rule).
    return kind in names or (kind == "integer" and "number" in names)


def _number(instance) -> bool:
    return _json_type(instance) in ("integer", "number")


def _equal(a: Any, b: Any) -> bool:
    """JSON equality, as jsonschema's: true is not 1, 1 is 1.0."""
    ka, kb = _json_type(a), _json_type(b)
    numeric = {"integer", "number"}
    if ka in numeric and kb in numeric:
        return a == b
    if ka != kb:
        return False
    if ka == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if ka == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


@lru_cache(maxsize=256)
def _pattern(pattern: str):
    return re.compile(_END.sub(r"\\Z", pattern))


def _properties(props, instance, _schema) -> bool:
    if _json_type(instance) != "object":
        return True
    return all(conforms(sub, instance[k]) for k, sub in props.items() if k in instance)


def _additional(extra, instance, schema) -> bool:
    if _json_type(instance) != "object":
        return True
    if "patternProperties" in schema:
        raise Unsure("additionalProperties beside patternProperties")
    known = schema.get("properties", {})
    return all(conforms(extra, instance[k]) for k in instance if k not in known)   # as jsonschema walks it


def _when(kind: str, test: Callable[[Any, Any], bool]) -> Callable:
    """A keyword that applies to one JSON type only and passes every other."""
    def check(value, instance, _schema) -> bool:
        matches = _number(instance) if kind == "number" else _json_type(instance) == kind
        return not matches or test(value, instance)
    return check


def _items(sub, instance, schema) -> bool:
    if "prefixItems" in schema or isinstance(sub, list):
        raise Unsure("tuple-style items")
    return _json_type(instance) != "array" or all(conforms(sub, v) for v in instance)


def _one_of(branches, instance, _schema) -> bool:
    return sum(1 for b in branches if conforms(b, instance)) == 1


_KEYWORDS: Mapping[str, Callable[[Any, Any, dict], bool]] = MappingProxyType({
    "type": _type,
    "enum": lambda values, instance, _s: any(_equal(instance, v) for v in values),
    "const": lambda value, instance, _s: _equal(instance, value),
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _when("object", lambda names, inst: all(n in inst for n in names)),
    "propertyNames": _when("object", lambda sub, inst: all(conforms(sub, k) for k in inst)),
    "maxProperties": _when("object", lambda n, inst: len(inst) <= n),
    "items": _items,
    "minItems": _when("array", lambda n, inst: len(inst) >= n),
    "maxItems": _when("array", lambda n, inst: len(inst) <= n),
    "minLength": _when("string", lambda n, inst: len(inst) >= n),
    "pattern": _when("string", lambda p, inst: _pattern(p).search(inst) is not None),
    "minimum": _when("number", lambda m, inst: inst >= m),
    "maximum": _when("number", lambda m, inst: inst <= m),
    "exclusiveMinimum": _when("number", lambda m, inst: inst > m),
    "oneOf": _one_of,
})
