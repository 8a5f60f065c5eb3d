"""The schema check, a resolve pass (`check_schema` in passes.py, after --set
and variants aside): JSON Schema (schema/recipe.schema.json) with messages a
person can act on. Every issue is collected and raised once, each pointing at
the key that holds it; unknown keys get a did-you-mean.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, List, Mapping

from compiler.errors import RecipeError, SchemaError
from compiler.resolve.conforms import Unsure, conforms
from compiler.source import SourceMap

__all__ = ["validate", "validator_for", "explain", "load_schema", "suggest", "plainly_valid"]


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("compiler._schema").joinpath("recipe.schema.json").read_text("utf-8")


def load_schema() -> dict:
    """The recipe schema, a fresh copy per call: a cached dict would be shared
    by every caller, and the validators keep theirs."""
    return json.loads(_schema_text())


_END = re.compile(r"(?<!\\)\$$")   # a final unescaped `$`


@lru_cache(maxsize=1)
def _validator_class():
    """Draft 2020-12 with two rules made strict. Built on first use: every
    module that wants `suggest` imports this one, and jsonschema costs a tenth
    of a second that a cached run need not pay."""
    import jsonschema

    def strict_pattern(validator, pattern, instance, schema):
        """`pattern` as the schema means it: Python's `$` also matches before a
        final newline, so "ok\\n../../evil" passed `^...$`; `\\Z` does not."""
        if validator.is_type(instance, "string") and not re.search(_END.sub(r"\\Z", pattern), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    # An integer is an int: JSON Schema counts 512.0 as one, and later stages then
    # get a float where they need an int (range(), bytearray(), node inputs).
    types = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": strict_pattern},
                                        type_checker=types)


@lru_cache(maxsize=1)
def _validator():
    return _validator_class()(load_schema())


@lru_cache(maxsize=1)
def _schema() -> dict:
    return load_schema()   # read here only, never handed out


def plainly_valid(schema: dict, data: Any) -> bool:
    """True when `data` is valid against `schema` by conforms.py's check, so
    no jsonschema validator need be built; False when it is not, or when that
    check cannot tell (then ask the validator, for messages or the answer)."""
    try:
        return conforms(schema, data)
    except Unsure:
        return False


def validator_for(schema: dict):
    """A validator with the recipe schema's rules (strict patterns and integers) for a piece of it."""
    return _validator_class()(schema)


def suggest(word: str, choices) -> str:
    """' (did you mean `x`?)' or ''. `choices` may be a mapping from the text
    compared to the text shown (file stems -> file names, var -> vars.var)."""
    shown = choices if isinstance(choices, Mapping) else {str(c): str(c) for c in choices}
    match = difflib.get_close_matches(str(word), [str(c) for c in shown], n=1, cutoff=0.6)
    return f" (did you mean `{shown[match[0]]}`?)" if match else ""


def validate(data: Any, source: SourceMap) -> None:
    """Raise SchemaError listing every problem in `data`, or return None."""
    bad = dict(_non_finite(data, ()))
    problems: List[RecipeError] = [RecipeError(f"must be a finite number, not {value}", source.locate(path))
                                   for path, value in bad.items()]
    if not problems and plainly_valid(_schema(), data):   # the usual case: jsonschema never imported
        return
    said = {p.location.key_path for p in problems}   # NaN and inf: said once, not again as out of range
    for error in _validator().iter_errors(data):
        problems.extend(p for p in explain(error, source) if p.location.key_path not in said)
    if problems:
        raise SchemaError(_dedupe(problems))


def _non_finite(value: Any, path: tuple):
    """(path, value) of every NaN and infinity: NaN passes every minimum and
    maximum, and neither is JSON, so a graph must never carry one."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, path + (i,))


def _dedupe(problems: List[RecipeError]) -> List[RecipeError]:
    seen, out = set(), []
    for p in problems:
        if p.format() not in seen:
            seen.add(p.format())
            out.append(p)
    return out


def explain(error, source: SourceMap) -> List[RecipeError]:
    """One jsonschema error as recipe errors a person can act on, located by `source`."""
    path = tuple(error.absolute_path)
    words = _EXPLAIN.get(error.validator, _generic)
    return [RecipeError(msg, source.locate(p)) for p, msg in words(error, path)]


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


_ARTICLE = MappingProxyType({"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
            "number": "a number", "boolean": "true or false", "null": "null"})


def _additional(error, path):
    allowed = list(error.schema.get("properties", {}))
    extra = [k for k in error.instance if k not in allowed]
    for key in extra:
        yield path + (key,), f"unknown key `{key}`{suggest(key, allowed)}"


def _required(error, path):
    missing = error.message.split("'")[1] if "'" in error.message else error.message
    yield path, f"missing required key `{missing}`"


def _type(error, path):
    want = error.validator_value
    wants = [want] if isinstance(want, str) else list(want)
    words = " or ".join(_ARTICLE.get(w, w) for w in wants)
    yield path, f"must be {words}, not {_type_name(error.instance)}"


def _enum(error, path):
    choices = error.validator_value
    listed = ", ".join(str(c) for c in choices)
    yield path, f"`{error.instance}` is not one of: {listed}{suggest(error.instance, choices)}"


def _bound(symbol: str) -> Callable:
    def explain(error, path):
        yield path, f"must be {symbol} {error.validator_value}, not {error.instance}"
    return explain


def _pattern(error, path):
    if "propertyNames" in error.schema_path:
        yield from _property_names(error, path)
    elif path == ("name",):
        yield path, (f"`{error.instance}` is not allowed: use letters, digits, ., - and _, "
                     "starting with a letter or digit")
    elif path and path[-1] == "prefix":
        yield path, "must be a relative path inside the output folder (no leading /, no .., no % or \\)"
    else:
        yield path, f"`{error.instance}` has characters that are not allowed here (pattern {error.validator_value})"


def _property_names(error, path):
    bad = error.instance
    yield path + (bad,), f"name `{bad}` is not allowed: use up to 32 lowercase letters, digits, - and _"


def _one_of(error, path):
    """Report against the branch the user meant: for a mapping, the branch
    whose required keys it has; otherwise say which types would do."""
    branch = _meant_branch(error.validator_value, error.instance)
    if branch is not None:
        sub = validator_for(branch)
        found = list(sub.iter_errors(error.instance))
        for e in found:
            yield from _EXPLAIN.get(e.validator, _generic)(e, path + tuple(e.absolute_path))
        if found:
            return
    branches = error.validator_value
    allowed = _branch_types(branches)
    mine = _json_type(error.instance)
    if allowed and mine not in allowed:
        words = " or ".join(_ARTICLE[t] for t in sorted(allowed, key=_TYPE_ORDER.index))
        yield path, f"must be {words}, not {_type_name(error.instance)}"
        return
    desc = error.schema.get("description", "").rstrip(".")
    words = [c for e in (error.context or []) for c in e.schema.get("enum", [])]
    hint = suggest(error.instance, words) if isinstance(error.instance, str) else ""
    yield path, f"invalid value {json.dumps(error.instance)}{hint}" + (f": {desc}" if desc else "")


def _meant_branch(branches, instance):
    """The branch of the same JSON type that shares the most keys with the
    value (all of its required ones first), or None when that is unclear."""
    mine = _json_type(instance)
    same = [b for b in branches if ("number" if b.get("type") == "integer" else b.get("type")) == mine]
    if not same:
        return None
    if not isinstance(instance, dict):
        return same[0] if len(same) == 1 else None

    def score(b):
        props = b.get("properties", {})
        need = b.get("required", [])
        return (all(k in instance for k in need), sum(k in props for k in instance))
    best = max(same, key=score)
    return best if len(same) == 1 or score(best)[1] > 0 else None


_TYPE_ORDER = ("number", "integer", "string", "array", "object", "boolean", "null")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(value), "?")


def _branch_types(branches) -> set:
    types = set()
    for b in branches:
        t = b.get("type")
        if isinstance(t, str):
            types.add("number" if t == "integer" else t)
        elif "enum" in b or "const" in b:
            values = b.get("enum", [b.get("const")])
            types.update(_json_type(v) for v in values)
        else:
            return set()       # an untyped branch: cannot say which types would do
    return types


def _count(word: str) -> Callable:
    def explain(error, path):
        yield path, f"must have {word} {error.validator_value} items, not {len(error.instance)}"
    return explain


def _const(error, path):
    yield path, f"must be {json.dumps(error.validator_value)}, not {json.dumps(error.instance)}"


def _generic(error, path):
    yield path, error.message


_EXPLAIN: Mapping[str, Callable] = MappingProxyType({
    "additionalProperties": _additional,
    "required": _required,
    "type": _type,
    "enum": _enum,
    "minimum": _bound("≥"),
    "maximum": _bound("≤"),
    "exclusiveMinimum": _bound(">"),
    "exclusiveMaximum": _bound("<"),
    "pattern": _pattern,
    "propertyNames": _property_names,
    "oneOf": _one_of,
    "minItems": _count("at least"),
    "maxItems": _count("at most"),
    "maxProperties": lambda e, p: [(p, f"has {len(e.instance)} entries; at most {e.validator_value} are supported")],
    "minLength": lambda e, p: [(p, "must not be empty")],
    "const": _const,
})
