"""The one driver of everything up to the graph, in the order it runs:

    loader (marks, duplicate keys) -> presets (extends:, --preset)
      -> resolve passes (--set, variants aside, schema, shorthand, defaults,
         templates, regions, inputs, family) -> Recipe
      -> [model names, given a catalogue] -> lower -> Graph -> advisor -> findings

The schema check is one of the resolve passes, after --set and after
`variants:`/`sweep:` are set aside. `compile` raises the errors it finds
once (with `strict`, the advisor's warnings too) and returns the rest; it
prints nothing. Given a server's catalogue, model names as users write them
(no subfolder) become the names the server lists (check/names.py), with a
notice each, before anything is lowered. The CLI, the watch, every sweep job and `compile_file` call
it.

`source` is a recipe path, or what `load` returned: a sweep loads its files
once and compiles every job from that one `Loaded` (each compile works on a
deep copy of its document and source map, so jobs cannot see each other).
A `(document, SourceMap)` pair, as `load_with_presets` returns it, is taken
too (and copied the same way).

With a `cache` (compiler/cache.py, the caller's), a recipe path whose files,
presets, inputs, --set and version are all unchanged comes back as it was
compiled before, without loading, resolving or lowering it again: the
modules that do those are imported only on a miss.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Tuple, Union

from compiler.check.advise import Finding, advise, raise_errors
from compiler.check.names import match_names
from compiler.comfy.object_info import Catalogue
from compiler.ir.graph import Graph
from compiler.ir.recipe import Recipe
from compiler.resolve.presets import Loaded, load_recipe
from compiler.source import SourceMap

if TYPE_CHECKING:
    from compiler.cache import CompileCache

__all__ = ["Compiled", "Loaded", "Source", "compile", "complete_names", "load", "resolve"]

Source = Union[str, "os.PathLike[str]", Loaded, Tuple[dict, SourceMap]]


@dataclass(frozen=True)
class Compiled:
    recipe: Recipe
    graph: Graph
    findings: Tuple[Finding, ...]   # what the advisor said and did not refuse (warnings, unless strict)
    notices: Tuple[Finding, ...] = ()   # model names completed from the catalogue (level "note")
    # The resolved recipe as YAML (resolve/written.py), made when the compile
    # is kept in a cache: a cache hit then needs no YAML writer to fill a run
    # folder. Empty otherwise; run/folder.prepare makes it then.
    resolved: str = ""


def load(path: str, presets: Sequence[str] = (), allow: Sequence[str] = ()) -> Loaded:
    """Stages 1-2, load and presets, each file read once. `allow`: folders the
    recipe may read from besides its own (--allow-path; resolve/access.py)."""
    return load_recipe(os.fspath(path), presets, allow=allow)


def resolve(source: Source, overrides: Sequence[str] = (), presets: Sequence[str] = (),
            allow: Sequence[str] = ()) -> Recipe:
    """Load, presets and the resolve passes: the frozen Recipe, not yet lowered or advised."""
    loaded = _loaded(source, presets, allow)
    doc, smap = loaded.copy()
    from compiler.resolve.passes import resolve_loaded   # here: a cached compile never needs it
    return resolve_loaded(doc, smap, loaded.file, overrides, roots=loaded.roots)


def compile(source: Source, overrides: Sequence[str] = (), presets: Sequence[str] = (),
            strict: bool = False, catalogue: Optional[Catalogue] = None, allow: Sequence[str] = (),
            cache: Optional["CompileCache"] = None) -> Compiled:
    """load -> presets -> resolve passes -> [model names] -> lower -> advisor.
    Raises a RecipeError subclass for a bad recipe, CatalogueError for a name
    that matches several of the catalogue's files, AdviceError for what the
    advisor refuses (with `strict`, its warnings as well). `allow`: folders a
    recipe may read beyond its own (--allow-path). Only what compiled is kept
    in `cache`; errors are found again each time."""
    path = os.fspath(source) if cache is not None and isinstance(source, (str, os.PathLike)) else None
    done = cache.get(path, overrides, presets, strict, allow) if path is not None else None
    if done is None:
        loaded = _loaded(source, presets, allow)
        done = _lowered(resolve(loaded, overrides), strict)
        if path is not None:
            from compiler.resolve.written import resolved_yaml   # here: PyYAML, which a cache hit never imports
            done = dataclasses.replace(done, resolved=resolved_yaml(done.recipe))
            cache.put(path, overrides, presets, strict, done, loaded.files, allow)
    return done if catalogue is None else complete_names(done, catalogue, strict)


def complete_names(done: Compiled, catalogue: Catalogue, strict: bool = False) -> Compiled:
    """The model-names step over a compiled recipe: names the catalogue lists
    in a subfolder become its full names, and the graph is lowered (and
    advised) again. Callers that must refuse a recipe before they contact a
    server compile first, then fetch the catalogue and call this."""
    recipe, notices = match_names(done.recipe, catalogue)
    if not notices:
        return done
    return dataclasses.replace(_lowered(recipe, strict), notices=notices)


def _lowered(recipe: Recipe, strict: bool) -> Compiled:
    from compiler.lower import lower   # here: a cached compile never needs it
    graph = lower(recipe)
    findings = tuple(advise(recipe, graph))
    raise_errors(list(findings), strict)
    return Compiled(recipe, graph, findings)


def _loaded(source: Source, presets: Sequence[str], allow: Sequence[str] = ()) -> Loaded:
    if isinstance(source, tuple):
        doc, smap = source
        source = Loaded(smap.file, doc, smap, (), doc)
    if isinstance(source, Loaded):
        if presets:   # they were merged (or not) when it was loaded; merging again would read them again
            raise ValueError("presets are given to load(), not to compile() of a loaded recipe")
        return source
    return load(source, presets, allow)
