"""The resolved recipe as YAML: what `recipe resolve` prints and every run
folder keeps. It compiles to the identical graph.
"""
from __future__ import annotations

import copy

from compiler._version import __version__
from compiler.ir.recipe import Recipe
from compiler.resolve.schema import load_schema

__all__ = ["resolved_yaml"]


def protect(text: str) -> str:
    """templates.protect, imported (with jinja2) only for text with a `{`,
    the first character of every template marker: other text is its own."""
    if "{" not in text:
        return text
    from compiler.resolve.templates import protect as jinja_protect
    return jinja_protect(text)


def resolved_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe. It compiles to the identical graph: presets
    are merged in, defaults written out, prompts rendered (and protected so a
    literal `{{` in a rendered prompt stays literal)."""
    doc = copy.deepcopy(dict(recipe.document))
    for key in ("scene", "negative"):
        doc[key] = protect(doc[key])
    for char in doc.get("characters", {}).values():
        char["prompt"] = protect(char["prompt"])
    doc["version"] = 1
    order = list(load_schema()["properties"])   # the schema's order reads top-down like a recipe
    doc = {k: doc[k] for k in sorted(doc, key=lambda k: order.index(k) if k in order else len(order))}
    import yaml   # here: a run whose compile came from the cache has this text already (Compiled.resolved)
    header = f"# Resolved by recipe {__version__} from {recipe.source}. Compiles to the same graph.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000,
                                   default_flow_style=False)
