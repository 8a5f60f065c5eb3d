"""resolve/conforms.py answers "valid or not?" as jsonschema (with the recipe
schema's strict rules) does, so a valid recipe is compiled without importing
jsonschema. Compared here on every example recipe and preset, every bad case,
and mutated documents whose values are drawn from the schema's own edges
(each bound and the number beside it, each enum member, pattern-shaped
strings, wrong types)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler.errors import RecipeError, SchemaError
from compiler.pipeline import load
from compiler.resolve.conforms import Unsure, conforms
from compiler.resolve.schema import load_schema, plainly_valid, validate, validator_for
from compiler.source import SourceMap

try:
    from .mutations import mutate
except ImportError:   # tests/ is not a package
    from mutations import mutate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()
JSONSCHEMA = validator_for(SCHEMA)


def _documents():
    """Each file as the schema check sees it: through our own bounded loader
    (a bad case is an alias bomb), presets merged, variants set aside."""
    for path in sorted([*ROOT.glob("recipes/**/*.yaml"), *ROOT.glob("tests/bad/*.yaml")]):
        try:
            doc, _ = load(str(path), allow=[str(ROOT)]).copy()
        except RecipeError:   # refused before the schema check
            continue
        for key in ("variants", "sweep"):
            doc.pop(key, None)
        yield path.relative_to(ROOT).as_posix(), doc


DOCUMENTS = dict(_documents())


def agree(doc) -> bool:
    """conforms' answer, asserted equal to jsonschema's; False when it was Unsure."""
    try:
        answer = conforms(SCHEMA, doc)
    except Unsure:
        return False
    expected = not any(True for _ in JSONSCHEMA.iter_errors(doc))
    assert answer == expected, json.dumps(doc, default=str)[:400]
    return True


def test_there_are_documents_of_both_kinds():
    valid = [name for name, doc in DOCUMENTS.items() if agree(doc) and conforms(SCHEMA, doc)]
    assert len(DOCUMENTS) > 100 and len(valid) >= 8
    assert "recipes/portrait.yaml" in valid


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_same_answer_as_jsonschema(name):
    agree(DOCUMENTS[name])


def _edges(schema, found):
    """Values at the schema's edges: bounds and their neighbours, enum members, consts."""
    if isinstance(schema, dict):
        for key in ("minimum", "maximum", "exclusiveMinimum"):
            if key in schema:
                v = schema[key]
                found.update({v, v - 1, v + 1, float(v), v + 0.5})
        for key in ("minLength", "minItems", "maxItems"):
            if key in schema:
                found.update({"x" * schema[key], "x" * max(0, schema[key] - 1)})
        found.update(v for v in schema.get("enum", []) if isinstance(v, (str, int, float, bool)))
        if "const" in schema and isinstance(schema["const"], (str, int, float)):
            found.add(schema["const"])
        for value in schema.values():
            _edges(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _edges(value, found)
    return found


EDGES = sorted(_edges(SCHEMA, set()) | {True, False, None, "", "a b", "x.safetensors", "../x", "ok\n../evil"},
               key=repr)
VALUES = st.one_of(st.sampled_from(EDGES), st.lists(st.sampled_from(EDGES), max_size=3),
                   st.dictionaries(st.sampled_from(["a", "model", "lora", "box", "x"]), st.sampled_from(EDGES),
                                   max_size=2))
VALID = [doc for doc in DOCUMENTS.values() if plainly_valid(SCHEMA, doc)]


@st.composite
def mutated(draw):
    doc = draw(st.sampled_from(VALID))
    return mutate(draw, doc, draw(st.integers(1, 3)), VALUES,
                  delete=lambda draw, parent: isinstance(parent, dict) and draw(st.integers(0, 3)) == 0)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_documents_get_the_same_answer(doc):
    agree(doc)


@pytest.mark.parametrize("schema, instance, expected", [
    ({"type": "integer"}, 512.0, False),            # the recipe schema's integer
    ({"type": "number"}, 3, True),
    ({"type": "integer"}, True, False),
    ({"enum": [1]}, True, False),                    # JSON's true is not 1
    ({"const": 1}, 1.0, True),
    ({"pattern": "^ok$"}, "ok\n", False),            # `$` is the end of the string
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 3, False),   # both: not exactly one
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "No": 2}, False),
    ({"minimum": 1}, "0", True),                     # a bound passes what is not a number
])
def test_keywords(schema, instance, expected):
    assert conforms(schema, instance) is expected
    assert (not any(True for _ in validator_for(schema).iter_errors(instance))) is expected


@pytest.mark.parametrize("schema, instance", [
    ({"if": {}}, 1),                                 # a keyword it does not speak
    ({"type": "object"}, {1: "a"}),                  # YAML allows keys JSON does not
    ({"minimum": 0}, float("nan")),
    ({"type": "string"}, b"bytes"),
])
def test_what_it_cannot_tell_it_says(schema, instance):
    with pytest.raises(Unsure):
        conforms(schema, instance)
    assert plainly_valid(schema, instance) is False


def test_validate_still_words_every_problem():
    doc = json.loads(json.dumps(DOCUMENTS["recipes/portrait.yaml"]))
    doc["sampler"]["steps"] = 0
    doc["canvas"]["widht"] = 3
    with pytest.raises(SchemaError) as info:
        validate(doc, SourceMap("p.yaml"))
    text = str(info.value)
    assert "steps" in text and "widht" in text
