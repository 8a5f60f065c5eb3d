"""The one exception tree of `recipe`.

    RecipeError(message, location)            exit 2: the recipe is wrong
     ├── RecipeSyntaxError                    YAML that does not parse, duplicate keys
     ├── SchemaError(errors)                  every schema issue, collected
     ├── TemplateError                        Jinja2 failed on a prompt
     ├── PresetError                          extends: missing file, cycle
     ├── LowerError                           a recipe that cannot become a graph
     ├── CatalogueError(errors)               the graph does not fit the node catalogue
     ├── AdviceError(errors)                  the advisor refuses the recipe
     ├── RejectedError(node_errors)           the server's validation refused the graph
     └── RunError                             exit 1: the run, not the recipe, failed
          ├── ConnectError                    server unreachable, TLS, DNS
          ├── ServerError(status)             HTTP 4xx/5xx that is not a validation answer
          ├── ProtocolError                   a response we cannot read
          ├── ExecutionError(node_id)         execution_error from the server
          ├── InterruptedRun                  execution_interrupted, Ctrl-C
          └── RunTimeout                      a configured time limit passed

Every message has one fixed shape, tested word for word:

    portrait.yaml:12:5 characters.roxy.strength.model: must be ≤ 20

A `Location` with no line prints as `portrait.yaml characters.roxy`; no
location at all prints the bare message. Errors that collect several problems
print one such line per problem, in source order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

__all__ = [
    "Location", "RecipeError", "RecipeSyntaxError", "SchemaError", "TemplateError",
    "PresetError", "LowerError", "CatalogueError", "AdviceError", "RejectedError", "Rejection",
    "RunError", "ConnectError", "ServerError", "ProtocolError", "ExecutionError",
    "InterruptedRun", "RunTimeout", "printable",
]


@dataclass(frozen=True, order=True)
class Location:
    """Where a value came from. `line` and `col` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    col: int = 0
    key_path: str = ""

    def __str__(self) -> str:
        pos = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{pos} {self.key_path}" if self.key_path else pos


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape
    (ESC, other controls, newlines, bidi overrides): a value from a shared
    recipe must not retitle, clear or rewrite the terminal it is shown in,
    and one error stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


class RecipeError(Exception):
    """Base of every error `recipe` raises on purpose. Exit code 2: fix the recipe."""

    exit_code = 2

    def __init__(self, message: str, location: Optional[Location] = None, hint: str = ""):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        text = self.message + (f" ({self.hint})" if self.hint else "")
        return printable(f"{self.location}: {text}" if self.location else text)

    def lines(self) -> list[str]:
        return [self.format()]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class _Collected(RecipeError):
    """Several problems found in one pass, raised once (sqlglot style)."""

    def __init__(self, errors: Iterable[RecipeError]):
        self.errors = sorted(errors, key=_sort_key)
        first = self.errors[0] if self.errors else RecipeError("no details")
        super().__init__(first.message, first.location, first.hint)

    def lines(self) -> list[str]:
        return [line for e in self.errors for line in e.lines()]


def _sort_key(e: RecipeError):
    loc = e.location or Location("")
    return (loc.file, loc.line, loc.col, loc.key_path, e.message)


class RecipeSyntaxError(RecipeError):
    pass


class SchemaError(_Collected):
    pass


class TemplateError(RecipeError):
    pass


class PresetError(RecipeError):
    pass


class LowerError(RecipeError):
    pass


class CatalogueError(_Collected):
    pass


class AdviceError(_Collected):
    pass


@dataclass(frozen=True)
class Rejection:
    """One thing the server's validation refused, as the client parsed it from
    the answer: a node (its id and class) or, with no node_id, the whole prompt."""

    node_id: str
    class_type: str
    message: str    # "Value not in list: sampler_name: 'x' not in ..." (message: details)

    def format(self) -> str:
        return f"node {self.node_id} ({self.class_type}): {self.message}" if self.node_id else self.message


class RejectedError(_Collected):
    """The server answered 400 (or 200 with node_errors): its validation refused nodes.

    `rejections` are the parsed problems; `node_errors` is the raw answer, kept for records."""

    def __init__(self, errors: Iterable[RecipeError], node_errors: Optional[dict] = None,
                 prompt_id: str = "", rejections: Iterable[Rejection] = ()):
        self.node_errors = node_errors or {}
        self.prompt_id = prompt_id
        self.rejections = tuple(rejections)
        super().__init__(errors)


class RunError(RecipeError):
    """The run failed for a reason outside the recipe. Exit code 1."""

    exit_code = 1


class ConnectError(RunError):
    pass


class ServerError(RunError):
    def __init__(self, message: str, status: int = 0, location: Optional[Location] = None):
        self.status = status
        super().__init__(message, location)


class ProtocolError(RunError):
    pass


class ExecutionError(RunError):
    def __init__(self, message: str, node_id: str = "", location: Optional[Location] = None,
                 exception_type: str = ""):
        self.node_id = node_id
        self.exception_type = exception_type
        super().__init__(message, location)


class InterruptedRun(RunError):
    pass


class UnknownPrompt(RunError):
    """The server says it has no such prompt (GET /api/jobs/{id} answered 404):
    restarted, or never queued. Said at once, not waited out."""


class RunTimeout(RunError):
    pass
