"""Prompt templates that only put values in, rendered without Jinja2.

Most prompts that are templates at all are text with `{{ trigger }}` or
`{{ vars.light }}` in it. Importing Jinja2 and building the sandbox costs
about 25 ms of a cold compile (issue 12), so passes.render asks this module
first: for literal text and `{{ a.b.c }}` expressions only, it gives exactly
what templates.render (Jinja2, sandboxed, StrictUndefined) gives, or None
whenever it cannot be sure, and Jinja2 renders it then. tests/test_substitute.py
compares the two on every example prompt and on generated templates.

Where it answers None: any other brace in the text (a tag, a comment, a
filter, `{{{`); a name that is not in the context (Jinja2 words the error);
a Jinja2 keyword or constant (`true`, `none`, `in`); a name starting with
`_` (the sandbox refuses those); a key that is also an attribute of the
mapping (`vars.items`: Jinja2 looks up the attribute first); a value that
is not a plain scalar; a result over MAX_OUTPUT.
"""
from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional

__all__ = ["substitute", "MAX_OUTPUT"]

MAX_OUTPUT = 100_000   # characters a prompt may render to (templates.py refuses more, and words it)

_EXPR = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*\}\}")
_WORDS = frozenset({"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False",
                    "None", "recursive", "with", "without", "context", "import", "as"})
_SCALARS = (str, int, float, bool, type(None))   # printed by str(), as Jinja2's output prints them
_UNSURE = object()


def substitute(text: str, context: Mapping[str, Any]) -> Optional[str]:
    """`text` rendered as templates.render would render it, or None."""
    pieces: List[str] = []
    at = 0
    for match in _EXPR.finditer(text):
        literal = text[at:match.start()]
        value = _lookup(context, match.group(1).split("."))
        if "{" in literal or "}" in literal or value is _UNSURE:
            return None
        pieces += [_newlines(literal), str(value)]
        at = match.end()
    tail = text[at:]
    if "{" in tail or "}" in tail:
        return None
    pieces.append(_newlines(tail))
    out = "".join(pieces)
    return out.strip() if len(out) <= MAX_OUTPUT else None   # over it: Jinja2's budget says why


def _newlines(literal: str) -> str:
    """Jinja2 normalises the template's own newlines (not the values')."""
    return re.sub(r"\r\n?", "\n", literal)


def _lookup(context: Mapping[str, Any], names: List[str]) -> Any:
    if any(n in _WORDS for n in names) or names[0] not in context:
        return _UNSURE
    value = context[names[0]]
    for name in names[1:]:
        if type(value) is not dict or name not in value or hasattr(value, name):
            return _UNSURE
        value = value[name]
    return value if isinstance(value, _SCALARS) and not _odd_float(value) else _UNSURE


def _odd_float(value: Any) -> bool:
    return isinstance(value, float) and (value != value or value in (float("inf"), float("-inf")))
