"""SOURCE -> an API-format graph: a graph file, an editor workflow, or a PNG
ComfyUI saved.

A PNG's `prompt` text chunk is the API graph that actually ran (REFERENCE A4);
its `workflow` chunk, the editor's view, is used only when `prompt` is missing.
Chunks are read by hand: no image is decoded, so a damaged or huge picture
costs nothing and cannot raise anything but our own error.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from compiler.comfy.workflow import from_ui
from compiler.errors import Location, RecipeError

__all__ = ["read_source", "png_text_chunks", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 200_000_000


def read_source(path: str, catalogue: Any = None) -> Tuple[dict, str]:
    """(API graph, what it was read from)."""
    where = Location(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise RecipeError("file not found", where) from None
    except OSError as exc:
        raise RecipeError(f"cannot read file: {exc.strerror}", where) from None
    if len(raw) > MAX_BYTES:
        raise RecipeError(f"file is larger than {MAX_BYTES} bytes", where)
    if raw.startswith(PNG_SIGNATURE):
        return _from_png(raw, path, catalogue)
    return _from_json(_parse_json(raw, path, "the file"), path, catalogue, "")


def _parse_json(raw: bytes, path: str, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"{what} is neither JSON nor a PNG", Location(path)) from None
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{what} is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg}) and not a PNG",
                          Location(path)) from None


def _from_json(data: Any, path: str, catalogue: Any, via: str) -> Tuple[dict, str]:
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and _is_api(data["prompt"]):
        data = data["prompt"]        # {"prompt": graph, ...}, as queued to /prompt
    if _is_api(data):
        return data, via or "API graph"
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        if catalogue is None:
            raise RecipeError("an editor (UI) workflow needs the node catalogue to read its widget values: pass "
                              "--object-info PATH or --server HOST:PORT (an API graph or a PNG needs neither)",
                              Location(path))
        return from_ui(data, catalogue, path), via or "editor workflow"
    raise RecipeError("JSON, but not a ComfyUI graph: neither an API-format graph (nodes with class_type) nor an "
                      "editor workflow (a `nodes` list)", Location(path))


def _is_api(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(
        isinstance(v, dict) and "class_type" in v for v in data.values())


def _from_png(raw: bytes, path: str, catalogue: Any) -> Tuple[dict, str]:
    chunks = png_text_chunks(raw, path)
    if "prompt" in chunks:
        data = _parse_json(chunks["prompt"].encode("utf-8"), path, "the PNG's `prompt` chunk")
        return _from_json(data, path, None, "PNG (its prompt chunk)")
    if "workflow" in chunks:
        data = _parse_json(chunks["workflow"].encode("utf-8"), path, "the PNG's `workflow` chunk")
        return _from_json(data, path, catalogue, "PNG (its workflow chunk)")
    raise RecipeError("a PNG without a `prompt` or `workflow` text chunk: not saved by ComfyUI, or saved with "
                      "--disable-metadata", Location(path))


def png_text_chunks(raw: bytes, path: str = "png") -> Dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk as {keyword: text}."""
    out: Dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + length]
        if len(body) < length:
            break                   # truncated: keep what was read
        text = _text_chunk(kind, body)
        if text is not None:
            out.setdefault(text[0], text[1])
        if kind == b"IEND":
            break
        pos += 12 + length
    return out


def _text_chunk(kind: bytes, body: bytes) -> Optional[Tuple[str, str]]:
    key, sep, rest = body.partition(b"\0")
    if not sep or kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    try:
        if kind == b"tEXt":
            return key.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
        compressed, rest = rest[:1] == b"\1", rest[2:]
        _, _, rest = rest.partition(b"\0")          # language tag
        _, _, rest = rest.partition(b"\0")          # translated keyword
        return key.decode("latin-1"), (zlib.decompress(rest) if compressed else rest).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None
