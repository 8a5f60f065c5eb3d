"""Resolve pass: render prompt templates with Jinja2.

Sandboxed, because recipes are shared files; StrictUndefined, because a
misspelt `{{ vars.ligth }}` must be an error, not an empty string in a prompt
that silently renders the wrong picture.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from compiler.errors import Location, TemplateError
from compiler.resolve.schema import suggest

__all__ = ["render", "protect", "TEMPLATE_MARKERS"]

TEMPLATE_MARKERS = ("{{", "{%", "{#")

MAX_OUTPUT = 100_000   # characters: a prompt, not a document


class _Sandbox(SandboxedEnvironment):
    """Also refuses arithmetic that builds huge values ({{ 'a' * 10**9 }})."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise jinja2.exceptions.SecurityError("exponent too large")
        if operator == "*" and any(isinstance(v, (str, list)) for v in (left, right)):
            count = right if isinstance(left, (str, list)) else left
            size = len(left if isinstance(left, (str, list)) else right)
            if isinstance(count, int) and count * size > MAX_OUTPUT:
                raise jinja2.exceptions.SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def render(text: str, context: Mapping[str, Any], where: Location) -> str:
    try:
        return _ENV.from_string(text).render(**context).strip()
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message} (template line {exc.lineno})", where) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(_undefined_message(exc.message or "", context), where) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template not allowed: {exc}", where) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template error: {exc}", where) from None
    except Exception as exc:  # e.g. ZeroDivisionError inside an expression
        raise TemplateError(f"template error: {type(exc).__name__}: {exc}", where) from None


def _undefined_message(message: str, context: Mapping[str, Any]) -> str:
    attr = re.search(r"has no attribute '([^']+)'", message)
    if attr:
        name = attr.group(1)
        known = list(context.get("vars", {})) + list(context)
        return f"template uses undefined `{name}`{suggest(name, known)}"
    plain = re.search(r"'([^']+)' is undefined", message)
    if plain:
        name = plain.group(1)
        # `{{ ligth }}` most often means a var: offer `vars.light` too.
        names = {k: k for k in context}
        names.update({k: f"vars.{k}" for k in context.get("vars", {}) if k not in names})
        return f"template uses undefined `{name}`{suggest(name, names)}"
    return f"template uses an undefined value: {message}"


def protect(text: str) -> str:
    """Make a rendered prompt render to itself again (for recipe.resolved.yaml)."""
    if any(m in text for m in TEMPLATE_MARKERS):
        return "{% raw %}" + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}") + "{% endraw %}"
    return text
