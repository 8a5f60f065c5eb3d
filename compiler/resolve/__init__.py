"""Stages 1-3, in the order they run: the loader (loader.py: marks, duplicate
keys) -> presets (presets.py: extends:, --preset) -> the resolve passes
(passes.py RESOLVE_PASSES: --set, variants aside, the schema check,
shorthand, family defaults, templates, regions, input files, family
requirements) -> a frozen Recipe. The schema check is one of the passes, not
a stage before them. compiler.pipeline drives these and then lowering and
the advisor.
"""
from compiler.resolve.passes import Context, resolve_document, resolve_file, resolve_loaded

__all__ = ["Context", "resolve_document", "resolve_file", "resolve_loaded"]
