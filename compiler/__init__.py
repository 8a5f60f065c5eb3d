"""recipe: a declarative recipe compiler for ComfyUI.

    from compiler import compile_file
    recipe, graph = compile_file("recipes/portrait.yaml", overrides=["sampler.seed=7"])
    graph.to_json()

The pipeline, one module per stage: loader -> schema -> resolve (presets,
templates) -> lower -> catalogue/advise (check) -> client/run (submit, collect).
"""
from __future__ import annotations

__version__ = "0.1.0"

from typing import Sequence, Tuple

from .errors import Location, RecipeError
from .graph import Graph
from .recipe import Recipe

__all__ = ["compile_file", "resolve_file", "to_graph", "Recipe", "Graph", "RecipeError", "Location",
           "__version__"]


def resolve_file(path: str, overrides: Sequence[str] = (), presets: Sequence[str] = ()) -> Recipe:
    from .resolve import resolve_file as _resolve
    return _resolve(path, overrides, presets)


def to_graph(recipe: Recipe) -> Graph:
    from .lower import lower as _lower
    return _lower(recipe)


def compile_file(path: str, overrides: Sequence[str] = (), presets: Sequence[str] = ()) -> Tuple[Recipe, Graph]:
    recipe = resolve_file(path, overrides, presets)
    return recipe, to_graph(recipe)
