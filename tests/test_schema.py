"""The JSON Schema is what editors complete and document recipes from: it must
stay a valid draft 2020-12 schema with an $id and a description on every field."""
from __future__ import annotations

import jsonschema

from compiler.resolve.schema import load_schema


def _fields(node, path=""):
    if not isinstance(node, dict):
        return
    for name, sub in node.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _fields(sub, f"{path}.{name}")
    for key in ("additionalProperties", "items"):
        if isinstance(node.get(key), dict):
            yield from _fields(node[key], f"{path}.{key}")
    for key in ("oneOf", "anyOf"):
        for i, branch in enumerate(node.get(key, [])):
            yield from _fields(branch, f"{path}.{key}[{i}]")


def test_schema_is_valid_draft_2020_12_with_an_id():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith("recipe.schema.json")


def test_every_field_has_a_description():
    undocumented = [path for path, sub in _fields(load_schema()) if "description" not in sub]
    assert not undocumented, undocumented


def test_every_example_recipe_names_the_schema_on_its_first_line():
    """VS Code's YAML extension reads this modeline: completion and docs while editing."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "recipes").glob("*.yaml")) + sorted((root / "recipes" / "presets").glob("*.yaml"))
    assert len(files) >= 8
    for f in files:
        first = f.read_text("utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), f
        assert (f.parent / first[len(prefix):]).resolve() == (root / "schema" / "recipe.schema.json"), f
