"""Resolve pass: render prompt templates with Jinja2.

Sandboxed, because recipes are shared files (immutable, every growing
operation, loop and call bounded: see `_Sandbox`); StrictUndefined, because a
misspelt `{{ vars.ligth }}` must be an error, not an empty string in a prompt
that silently renders the wrong picture.
"""
from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from string import Formatter
from typing import Any, Mapping

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from compiler.errors import Location, TemplateError
from compiler.resolve.schema import suggest
from compiler.resolve.substitute import MAX_OUTPUT   # characters: a prompt, not a document

__all__ = ["render", "protect", "TEMPLATE_MARKERS"]

TEMPLATE_MARKERS = ("{{", "{%", "{#")

MAX_STEPS = 100_000    # loop iterations and calls per render: a prompt is not a program
MAX_INT_BITS = 4096    # integers a template may build with * and **
MAX_EMITTED = 10 * MAX_OUTPUT   # characters written per render, macros' own output included


class _Budget:
    """What one render may still spend (loop iterations and calls)."""

    def __init__(self):
        self.left, self.room = MAX_STEPS, MAX_EMITTED

    def spend(self, written: int = 0) -> None:
        self.left -= 1
        self.room -= written
        if self.left < 0:
            raise SecurityError(f"the template runs more than {MAX_STEPS} loop iterations and calls")
        if self.room < 0:
            raise SecurityError(f"the template writes more than {MAX_EMITTED} characters")


_BUDGET: ContextVar[_Budget] = ContextVar("template_budget")


class _Codegen(CodeGenerator):
    """Compiles each for-loop's iterable through `environment.budgeted` (with
    the length of the literal text its body writes each time round) and each
    `~` through `environment.joined`, so neither can run unbounded. What
    `{{ }}` writes is counted by the environment's `finalize`."""

    def visit_For(self, node, frame):
        literal = sum(len(n.data) for n in node.find_all(nodes.TemplateData))
        node.iter = nodes.Call(nodes.EnvironmentAttribute("budgeted"), [node.iter, nodes.Const(literal)],
                               [], None, None)
        super().visit_For(node, frame)

    def visit_Concat(self, node, frame):
        self.write("environment.joined(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox of every prompt template. Immutable: `vars.update(...)`
    and `list.append` are refused, so a template cannot change the recipe.
    Every operation that can grow a value is bounded before it runs: `*`,
    `+`, `~`, `**`, `%`, str.format, the padding methods and filters; every
    loop and call spends from one budget per render; every result is checked."""

    code_generator_class = _Codegen
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def call_binop(self, context, operator, left, right):
        _check_binop(operator, left, right)
        return _bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's own spelling)
        _BUDGET.get().spend()
        _check_call(__obj, args, kwargs)
        return _bounded(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value):
        inner = super().wrap_str_format(value)
        if inner is None:
            return None

        def checked(*args, **kwargs):
            _check_format_string(value.__self__)
            return _bounded(inner(*args, **kwargs))
        return checked

    def budgeted(self, iterable, literal: int = 0):
        budget = _BUDGET.get()
        for item in iterable:
            budget.spend(literal)
            yield item

    def joined(self, text):
        return _bounded(text)


def _written(value):
    """The environment's finalize: every `{{ }}` output, counted as it is written."""
    text = value if isinstance(value, str) else str(value)
    _BUDGET.get().spend(len(text))
    return text


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would be larger than {MAX_OUTPUT} characters")


def _bounded(value):
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_OUTPUT:
        raise _too_big("the result")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"an integer of more than {MAX_INT_BITS} bits")
    return value


def _bits(value) -> int:
    return value.bit_length() if isinstance(value, int) else 64


def _check_binop(operator: str, left, right) -> None:
    sized = (str, list, tuple)
    if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
        if abs(right) > 64 or _bits(left) * max(abs(right), 1) > MAX_INT_BITS:
            raise SecurityError("exponent too large")
    elif operator == "*" and any(isinstance(v, sized) for v in (left, right)):
        count, size = (right, len(left)) if isinstance(left, sized) else (left, len(right))
        if isinstance(count, int) and count * size > MAX_OUTPUT:
            raise SecurityError("repetition too large")
    elif operator == "*" and isinstance(left, int) and isinstance(right, int):
        if _bits(left) + _bits(right) > MAX_INT_BITS:
            raise SecurityError(f"an integer of more than {MAX_INT_BITS} bits")
    elif operator == "+" and isinstance(left, sized) and isinstance(right, sized):
        if len(left) + len(right) > MAX_OUTPUT:
            raise _too_big("the sum")
    elif operator == "%" and isinstance(left, str):
        _check_widths(_PERCENT_SPEC.findall(left), "%-format")


# %[flags][width][.precision]: a width of 999999999 pads to a gigabyte
_PERCENT_SPEC = re.compile(r"%[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_SPEC_NUMBER = re.compile(r"\d+")
_PADDING = frozenset(["center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap"])


def _check_widths(specs, what: str) -> None:
    for spec in specs:
        for part in (spec if isinstance(spec, tuple) else (spec,)):
            if part == "*" or "{" in part:
                raise SecurityError(f"a {what} width taken from an argument")
            if any(int(n) > MAX_OUTPUT for n in _SPEC_NUMBER.findall(part)):
                raise _too_big(f"a {what} width")


def _check_format_string(text: str) -> None:
    try:
        specs = [spec for _, field, spec, _ in Formatter().parse(text) if field is not None and spec]
    except ValueError as exc:
        raise SecurityError(f"bad format string: {exc}") from None
    _check_widths(specs, "format")


def _check_call(obj, args, kwargs) -> None:
    """Padding methods (and filters with the same names) take a width; str.replace multiplies."""
    name = getattr(obj, "__name__", "")
    owner = getattr(obj, "__self__", None)
    if name in _PADDING and isinstance(owner, str):
        if any(isinstance(a, int) and a > MAX_OUTPUT for a in (*args, *kwargs.values())):
            raise _too_big(f"`{name}`")
    if name == "replace" and isinstance(owner, str) and len(args) >= 2 and isinstance(args[1], str):
        if len(owner) + owner.count(str(args[0]) or " ") * len(args[1]) > MAX_OUTPUT:
            raise _too_big("`replace`")


def _bounded_filter(name: str, fn):
    """A filter whose size arguments are checked first and whose result is bounded."""
    @functools.wraps(fn)
    def checked(*args, **kwargs):
        values = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
        if name in _PADDING and any(v > MAX_OUTPUT for v in values):
            raise _too_big(f"`{name}`")
        if name == "format" and args:
            _check_widths(_PERCENT_SPEC.findall(str(args[0])), "%-format")
        if name == "replace" and len(args) >= 3:
            text, old, new = (str(a) for a in args[-3:])
            if len(text) + text.count(old or " ") * len(new) > MAX_OUTPUT:
                raise _too_big("`replace`")
        return _bounded(fn(*args, **kwargs))
    return checked


def _environment() -> _Sandbox:
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                   finalize=_written)
    env.globals.pop("lipsum", None)   # 100000 paragraphs of lorem ipsum is no prompt
    for name in (*_PADDING, "format", "replace"):
        if name in env.filters:
            env.filters[name] = _bounded_filter(name, env.filters[name])
    return env


_ENV = _environment()


def render(text: str, context: Mapping[str, Any], where: Location) -> str:
    token = _BUDGET.set(_Budget())
    try:
        out = _ENV.from_string(text).render(**context).strip()
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
    finally:
        _BUDGET.reset(token)
    if len(out) > MAX_OUTPUT:
        raise TemplateError(f"template not allowed: the prompt would be longer than {MAX_OUTPUT} characters", where)
    return out


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
