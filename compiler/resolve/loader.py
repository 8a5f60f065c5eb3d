"""Stage 1, load: YAML text -> plain data + SourceMap.

We compose the YAML node tree ourselves instead of calling `yaml.safe_load`,
because only the nodes carry line/column marks, and because PyYAML silently
keeps the last of two duplicate keys: a typo'd copy-paste would override a
LoRA strength without a word. Anchors are allowed, but expanding them is
bounded so a "billion laughs" document cannot eat the machine; so are the
file's size (read at most one byte past the limit, regular files only), its
nesting depth and the digits of an integer. Only YAML's own tags are taken:
a `!!python/...` or unknown tag is refused on a mapping or list as it is on
a scalar.
"""
from __future__ import annotations

from pathlib import Path as FsPath
from types import MappingProxyType
from typing import Any, Tuple

import yaml

from compiler.errors import Location, RecipeSyntaxError
from compiler.files import FileRefused, read_regular
from compiler.source import Path, SourceMap, key_path

__all__ = ["load_file", "load_text", "MAX_BYTES", "MAX_NODES"]

MAX_BYTES = 1_000_000   # a recipe is a page of YAML, not a data set
MAX_NODES = 50_000      # after alias expansion
MAX_DEPTH = 64          # mappings and lists inside each other; a recipe needs about 6
_TAGS = MappingProxyType({yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"})


def load_file(path: str | FsPath, display: str | None = None) -> Tuple[Any, SourceMap]:
    name = display or str(path)
    try:
        raw = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise RecipeSyntaxError("file not found", Location(name)) from None
    except FileRefused as exc:
        raise RecipeSyntaxError(f"cannot read file: {exc}", Location(name)) from None
    except OSError as exc:
        raise RecipeSyntaxError(f"cannot read file: {exc.strerror or exc}", Location(name)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeSyntaxError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                                Location(name, line, col)) from None
    return load_text(text, name)


def load_text(text: str, name: str) -> Tuple[Any, SourceMap]:
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise RecipeSyntaxError(f"file is larger than {MAX_BYTES} bytes", Location(name))
    loader = None
    try:
        loader, root = _compose(text)
        if root is None:
            return {}, SourceMap(name)
        builder = _Builder(loader, name)
        builder._mark((), root)
        return builder.build(root, ()), builder.source
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, name) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, name) from None
    except yaml.YAMLError as exc:
        raise RecipeSyntaxError(f"invalid YAML: {exc}", Location(name)) from None
    except RecursionError:   # PyYAML's parser recurses once per level of nesting
        raise RecipeSyntaxError(f"nested more than {MAX_DEPTH} levels deep", _too_deep(text, name)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _compose(text: str):
    """(loader, root node). libyaml when it is there (ten times faster on a
    1 MB recipe); for a document it refuses, PyYAML's own parser, whose
    messages (and marks) are the ones the tests and users know."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        loader = fast(text)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError:
            loader.dispose()
    loader = yaml.SafeLoader(text)   # the reader refuses control characters already here
    return loader, loader.get_single_node()


_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
         yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _too_deep(text: str, name: str) -> Location:
    """Where nesting first passes MAX_DEPTH, found with the scanner (which
    does not recurse), so the place named does not depend on the stack."""
    scanner = yaml.SafeLoader(text)
    depth = 0
    try:
        while not scanner.check_token(yaml.StreamEndToken):
            token = scanner.get_token()
            depth += isinstance(token, _OPEN) - isinstance(token, _CLOSE)
            if depth > MAX_DEPTH:
                return Location(name, token.start_mark.line + 1, token.start_mark.column + 1)
    except yaml.YAMLError:
        pass
    finally:
        scanner.dispose()
    return Location(name)


def _reader_error(exc: yaml.reader.ReaderError, text: str, name: str) -> RecipeSyntaxError:
    """A character YAML does not allow in a file (ESC, NUL, U+FFFE...), at its line and column."""
    pos = exc.position
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return RecipeSyntaxError(f"invalid YAML: the character U+{ord(char):04X} is not allowed in a recipe "
                             f"(write it as an escape in a double-quoted string)", Location(name, line, col))


# PyYAML's words for the two mistakes people make most, in plainer ones.
_PLAIN = MappingProxyType({"found character '\\t' that cannot start any token": "a tab character: indent with spaces"})


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> RecipeSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    problem = _PLAIN.get(problem, problem)
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    ctx = exc.context_mark
    if exc.context and ctx is not None and exc.problem:   # where the unclosed thing began
        problem += f" ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
    return RecipeSyntaxError(f"invalid YAML: {problem}", Location(name, line, col))


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, name: str):
        self.loader = loader
        self.source = SourceMap(name)
        self.name = name
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise RecipeSyntaxError(f"document expands to more than {MAX_NODES} values (alias bomb?)",
                                    self._loc(node, path))
        if len(path) > MAX_DEPTH:
            raise RecipeSyntaxError(f"nested more than {MAX_DEPTH} levels deep", self._loc(node, path[:1]))
        if type(node) in _TAGS and node.tag != _TAGS[type(node)]:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise RecipeSyntaxError(f"the YAML tag `{tag}` is not allowed", self._loc(node, path))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self._item(child, path + (i,)) for i, child in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:   # int('1' * 5000): Python's 4300-digit limit on int(str)
            raise RecipeSyntaxError("number has too many digits", self._loc(node, path)) from None

    def _item(self, node: yaml.Node, path: Path) -> Any:
        self._mark(path, node)
        return self.build(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        written = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)   # YAML merge keys (<<: *base): merged pairs first
        merged = len(node.value) - written
        out: dict = {}
        written_keys: set = set()
        for i, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise RecipeSyntaxError("keys must be plain scalars", self._loc(key_node, path))
            # A key is the text as written: YAML 1.1 would read `no:` as False
            # and `007:` as 7, turning a character id into something else.
            key = key_node.value
            # A key written here may override one that `<<:` merged in; two written ones may not.
            if key in written_keys and i >= merged:
                first = self.source.locate(path + (key,))
                raise RecipeSyntaxError(f"duplicate key `{key}` (first defined on line {first.line})",
                                        self._loc(key_node, path + (key,)))
            if i >= merged:
                written_keys.add(key)
            if key in out:   # overriding a merged key: forget the merged value's marks
                self.source.drop(path + (key,))
            self._mark(path + (key,), key_node)
            out[key] = self.build(value_node, path + (key,))
        return out

    def _mark(self, path: Path, node: yaml.Node) -> None:
        self.source.set(path, self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def _loc(self, node: yaml.Node, path: Path) -> Location:
        return Location(self.name, node.start_mark.line + 1, node.start_mark.column + 1, key_path(path))
