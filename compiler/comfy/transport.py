"""The wire, and the ONE place where third-party exceptions become the project's own.

HTTP goes through a requests Session (`Http`), the WebSocket through
websocket-client (`WebSocket`), JSON through `parse_json`. Whatever requests,
urllib3, websocket-client, http.client, ssl, socket or json raise leaves this
module as a RunError (ConnectError, RunTimeout, ServerError, ProtocolError),
so the client and the event stream above it never see a foreign exception.
tests/test_transport.py checks that for every exception class those
libraries define.
"""
from __future__ import annotations

import json
import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Iterator, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import requests
import urllib3
import websocket

from compiler.errors import ConnectError, ProtocolError, RecipeError, RunTimeout, ServerError

__all__ = ["translate_errors", "translate", "Answer", "Http", "WebSocket", "parse_json"]

_CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
           websocket.WebSocketConnectionClosedException)
_UNREADABLE = (requests.exceptions.RequestException, websocket.WebSocketException,
               urllib3.exceptions.HTTPError, HTTPException, ValueError, LookupError)


@contextmanager
def translate_errors(where: str, url: str) -> Iterator[None]:
    """Run the body; a third-party exception leaves it as one of ours, from it."""
    try:
        yield
    except RecipeError:
        raise
    except Exception as exc:
        mapped = translate(exc, where, url)
        if mapped is None:
            raise
        raise mapped from exc


def translate(exc: Exception, where: str, url: str) -> Optional[RecipeError]:
    """The project's error for a third-party one; None for an exception that is
    not about the wire (a bug, which must not be disguised)."""
    why = _reason(exc)
    unreachable = f"cannot reach ComfyUI at {url} ({where}): {why}"
    hint = f"is ComfyUI running? start it with `python main.py --port {_port(url)}`"
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return ConnectError(f"TLS with {url} failed ({where}): {why}",
                            hint="check the certificate; point REQUESTS_CA_BUNDLE at your CA file")
    if isinstance(exc, (requests.exceptions.ConnectTimeout, websocket.WebSocketAddressException)):
        return ConnectError(unreachable, hint=hint)
    if isinstance(exc, (requests.exceptions.Timeout, websocket.WebSocketTimeoutException, TimeoutError)):
        return RunTimeout(f"{where} got no answer from {url} in time ({why})")
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return ServerError(f"ComfyUI refused the WebSocket at {url}: HTTP {exc.status_code}",
                           exc.status_code)
    if isinstance(exc, _CLOSED) or (isinstance(exc, requests.exceptions.ConnectionError) and exc.args
                                    and isinstance(exc.args[0], urllib3.exceptions.ProtocolError)):
        return ProtocolError(f"{where}: {url} closed the connection without a valid answer ({why})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectError(unreachable, hint=hint)
    if isinstance(exc, _UNREADABLE):   # before OSError: requests' exceptions are IOErrors too
        return ProtocolError(f"{where}: unreadable answer from {url}: {why}")
    if isinstance(exc, OSError):       # refused, unreachable, DNS
        return ConnectError(unreachable, hint=hint)
    return None


def _port(url: str) -> int:
    try:
        return urlsplit(url).port or 8188
    except ValueError:
        return 8188


def _reason(exc: BaseException) -> str:
    """The root cause in a few printable words, not urllib3's nested repr."""
    for _ in range(8):
        inner = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        if inner is None and exc.args and isinstance(exc.args[-1], BaseException):
            inner = exc.args[-1]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:200] or type(exc).__name__


def parse_json(data: bytes, message: str) -> Any:
    """`data` as JSON, or ProtocolError(message) when it is not JSON (or not UTF-8)."""
    try:
        return json.loads(data)
    except ValueError:
        raise ProtocolError(message) from None


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, its body read in full (so errors while reading it are translated too)."""
    status: int
    content: bytes


class Http:
    """A requests Session; `request` never raises anything but our errors."""

    def __init__(self, session: Optional[requests.Session] = None):
        self._session = session or requests.Session()

    def request(self, method: str, url: str, where: str, *, headers: Mapping[str, str],
                timeout: Tuple[float, float], **kwargs) -> Answer:
        with translate_errors(where, url):
            resp = self._session.request(method, url, headers=dict(headers), timeout=timeout, **kwargs)
            with resp:
                return Answer(resp.status_code, resp.content)

    def sslopt(self) -> dict:
        """websocket-client ignores REQUESTS_CA_BUNDLE: hand it the CA requests would use."""
        verify = self._session.verify
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") \
            or (verify if isinstance(verify, str) else None)
        return {} if not ca else {"ca_cert_path": ca} if os.path.isdir(ca) else {"ca_certs": ca}

    def close(self) -> None:
        self._session.close()


class WebSocket:
    """One websocket-client connection behind three calls.

    `receive` answers ("text" | "binary", payload), ("timeout", b"") when
    nothing came in time, or ("closed", b"") once the peer has gone (the
    socket is shut then). EventStream accepts anything with these calls
    through its `connect=` seam, which is how its reconnect logic is tested."""

    def __init__(self, url: str, *, headers: Mapping[str, str], timeout: float, sslopt: dict):
        self.url = url
        with translate_errors("WebSocket connect", url):
            self._ws = websocket.create_connection(url, timeout=timeout, sslopt=sslopt,
                                                   header=[f"{k}: {v}" for k, v in headers.items()],
                                                   suppress_origin=True,   # avoid the Origin 403
                                                   # its pure-Python UTF-8 check costs ~0.5 ms a frame;
                                                   # parse_json refuses a frame that is not UTF-8 anyway
                                                   skip_utf8_validation=True)

    def send_text(self, text: str, where: str = "WebSocket") -> None:
        with translate_errors(where, self.url):
            self._ws.send(text)

    def receive(self, timeout: float) -> Tuple[str, bytes]:
        with translate_errors("WebSocket", self.url):
            self._ws.settimeout(timeout)
            try:
                opcode, payload = self._ws.recv_data()
            except (websocket.WebSocketTimeoutException, TimeoutError):
                return "timeout", b""
            except (websocket.WebSocketConnectionClosedException, OSError):
                opcode, payload = websocket.ABNF.OPCODE_CLOSE, b""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._ws.shutdown()
                return "closed", b""
            return ("binary" if opcode == websocket.ABNF.OPCODE_BINARY else "text"), payload

    def close(self) -> None:
        try:
            self._ws.close(timeout=0.5)
        except Exception:   # already broken: nothing useful to tell the caller
            pass
