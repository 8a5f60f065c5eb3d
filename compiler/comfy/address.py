"""Where a ComfyUI server is and how long to wait for it: the base URLs from
what the user typed, the time limits, and the headers from the environment.

Credentials never come from the URL (they would be echoed in messages and run
records); RECIPE_TOKEN and RECIPE_HEADERS carry them instead.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit

from compiler.errors import RecipeError

__all__ = ["ServerAddress", "parse_server", "Timeouts", "headers_from_env"]

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class ServerAddress:
    http_base: str   # e.g. https://host:8443/comfy, no trailing slash
    ws_base: str     # the same with ws:// or wss://


def parse_server(text: str) -> ServerAddress:
    """`localhost:8188`, `http://h:p`, `https://h[:p][/prefix]` -> both base URLs."""
    raw = (text or "").strip()
    url = raw if "://" in raw else "http://" + raw
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RecipeError(f"bad server address {raw!r}: {exc}") from None
    if parts.username or parts.password:   # never echo it: it holds a secret
        raise RecipeError("bad server address: credentials do not belong in the URL; "
                          "set RECIPE_TOKEN or RECIPE_HEADERS instead")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or any(c.isspace() for c in raw):
        raise RecipeError(f"bad server address {raw!r}: expected host:port or "
                          "http(s)://host[:port][/prefix], e.g. http://127.0.0.1:8188")
    # A bare host means ComfyUI's default port, not 80.
    netloc = parts.netloc + (":8188" if "://" not in raw and port is None else "")
    # A prefix as the user typed it (`/cömfy`), percent-encoded once for the request line.
    rest = netloc + quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=~")
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return ServerAddress(f"{parts.scheme}://{rest}", f"{ws_scheme}://{rest}")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0           # TCP/TLS connect and the WebSocket handshake
    read: float = 30.0             # one HTTP answer
    idle: float = 600.0            # no WS message and no history progress for this long
    total: Optional[float] = None  # one wait(), start to finish


def headers_from_env() -> dict[str, str]:
    """RECIPE_TOKEN -> bearer; RECIPE_HEADERS -> a JSON object or `Name: value` lines."""
    token = os.environ.get("RECIPE_TOKEN", "").strip()
    if not _latin1(token) or re.search("[\r\n]", token):
        raise RecipeError("RECIPE_TOKEN holds characters an HTTP header cannot carry")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    raw = os.environ.get("RECIPE_HEADERS", "").strip()
    lines = [line for line in raw.splitlines() if line.strip()]
    try:
        pairs = list(json.loads(raw).items()) if raw.startswith("{") else \
            [line.split(":", 1) if ":" in line else ("", "") for line in lines]
    except (ValueError, AttributeError):
        raise RecipeError("RECIPE_HEADERS is not a JSON object") from None
    for number, (name, value) in enumerate(pairs, 1):
        name = name.strip() if isinstance(name, str) else ""
        # The message names the entry, never its text: it may hold a secret.
        if not _HEADER_NAME.match(name) or not isinstance(value, str) or re.search("[\r\n]", value) \
                or not _latin1(value):
            raise RecipeError(f"RECIPE_HEADERS entry {number} is not a valid header: "
                              "use `Name: value` lines or a JSON object of strings")
        headers[name] = value.strip()
    return headers


def _latin1(text: str) -> bool:
    """Whether HTTP (http.client, websocket-client) can send it as a header value."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
