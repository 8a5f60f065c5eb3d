"""recipe: a declarative recipe compiler for ComfyUI.

    from compiler import compile_file
    recipe, graph = compile_file("recipes/portrait.yaml", overrides=["sampler.seed=7"])
    graph.to_json()

The pipeline, one package per stage, in the order it runs: resolve/ (the
loader, then presets: extends: and --preset, then the resolve passes: --set,
variants aside, the schema check, shorthand, family defaults, templates,
regions, input files) -> lower.py -> check/ (advisor, cost, catalogue) ->
comfy/ and run/ (submit, follow, collect). compiler.pipeline drives it up to
the graph; compile_file is that driver, advisor included.
"""
from __future__ import annotations

from compiler._version import __version__

from typing import Sequence, Tuple

from compiler.errors import Location, RecipeError
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe

__all__ = ["compile_file", "resolve_file", "to_graph", "Recipe", "Graph", "RecipeError", "Location",
           "__version__"]


def resolve_file(path: str, overrides: Sequence[str] = (), presets: Sequence[str] = (),
                 allow: Sequence[str] = ()) -> Recipe:
    """Loader -> presets -> resolve passes: the frozen Recipe, not lowered or advised.
    A recipe reads files only under its folder and `allow` (README: trust model)."""
    from compiler.resolve.passes import resolve_file as _resolve
    return _resolve(path, overrides, presets, allow=allow)


def to_graph(recipe: Recipe) -> Graph:
    from compiler.lower import lower as _lower
    return _lower(recipe)


def compile_file(path: str, overrides: Sequence[str] = (), presets: Sequence[str] = (),
                 strict: bool = False, allow: Sequence[str] = ()) -> Tuple[Recipe, Graph]:
    """The recipe and its graph, refused (AdviceError) where the CLI would
    refuse them: the advisor's errors, and with `strict` its warnings too."""
    from compiler import pipeline
    done = pipeline.compile(path, overrides, presets, strict=strict, allow=allow)
    return done.recipe, done.graph
