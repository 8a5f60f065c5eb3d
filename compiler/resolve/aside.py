"""Resolve pass, variants aside: `variants:` and `sweep:` are checked and
taken out of the document before the schema sees the rest.

Neither key describes *this* picture: each names other pictures made from it
(compiler/ab/variants.py expands them into jobs). So this pass checks them
against their own piece of the recipe schema, worded and located like every
other schema error, and removes them and their marks; a resolved recipe has
no trace of them.
"""
from __future__ import annotations

from functools import lru_cache

from compiler.errors import SchemaError
from compiler.resolve.schema import explain, load_schema, plainly_valid, validator_for
from compiler.source import SourceMap

__all__ = ["AB_KEYS", "check_pieces", "strip_variants"]

AB_KEYS = ("variants", "sweep")


@lru_cache(maxsize=1)
def _piece_schema() -> dict:
    props = load_schema()["properties"]
    # Their own piece of the recipe schema: one source of truth for editors and for us.
    return {"type": "object", "properties": {k: props[k] for k in AB_KEYS}}


@lru_cache(maxsize=1)
def _validator():
    return validator_for(_piece_schema())


def check_pieces(pieces: dict, source: SourceMap) -> None:
    """Schema errors of `variants:` / `sweep:`, worded and located like the rest."""
    if not pieces or plainly_valid(_piece_schema(), pieces):
        return
    problems = [p for e in _validator().iter_errors(pieces) for p in explain(e, source)]
    if problems:
        raise SchemaError(problems)


def strip_variants(doc: dict, ctx) -> dict:
    """Resolve pass: take `variants:` and `sweep:` out (after checking them),
    so the rest is checked, resolved and compiled as the one recipe it is."""
    pieces = {k: doc.pop(k) for k in AB_KEYS if k in doc}
    check_pieces(pieces, ctx.source)
    for key in pieces:
        ctx.source.drop((key,))
    return doc
