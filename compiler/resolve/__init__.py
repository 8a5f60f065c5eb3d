"""Stages 1-3: load (marks, duplicate keys) -> presets (extends:, --preset) ->
resolve passes (--set, variants aside, schema, shorthand, defaults, templates,
regions, inputs, family) -> a frozen Recipe.
"""
from compiler.resolve.passes import Context, resolve_document, resolve_file

__all__ = ["Context", "resolve_document", "resolve_file"]
