"""The wire, and the ONE place where third-party exceptions become the project's own.

HTTP goes through the standard library's http.client (`Http`, one kept-alive
connection per server), the WebSocket through websocket-client (`WebSocket`),
JSON through `parse_json`. Whatever websocket-client, http.client, ssl,
socket or json raise leaves this module as a RunError (ConnectError,
RunTimeout, ServerError, ProtocolError), so the client and the event stream
above it never see a foreign exception. tests/test_transport.py checks that
for every exception class those libraries define.

Why not requests: importing it (with urllib3) costs about 50 ms, which every
one-off `recipe run` paid (issue 12); the official websockets example speaks
plain stdlib HTTP too. What requests gave us is kept: keep-alive, proxies
from the environment (`comfy/proxies.py`), REQUESTS_CA_BUNDLE and
CURL_CA_BUNDLE, certifi's roots where it is installed.
"""
from __future__ import annotations

import json
import os
import select
import ssl
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple
from urllib.parse import SplitResult, urlencode, urlsplit

import websocket

from compiler.comfy.proxies import proxy_for
from compiler.errors import ConnectError, ProtocolError, RecipeError, RunTimeout, ServerError

__all__ = ["translate_errors", "translate", "Answer", "Http", "WebSocket", "parse_json", "MAX_BODY"]

MAX_BODY = 1 << 30   # one answer: /object_info is ~600 KB, an image a few MB; never unbounded

_CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
           websocket.WebSocketConnectionClosedException)
# What an answer we cannot read raises. Not ValueError at large: one from
# building our own request (a header that is not latin-1) is a bug to show,
# not "an unreadable answer". websocket-client parses its handshake with
# int() and str methods, so the WebSocket's calls add ValueError (_WS_UNREADABLE).
_UNREADABLE = (websocket.WebSocketException, HTTPException, json.JSONDecodeError, UnicodeDecodeError)
_WS_UNREADABLE = _UNREADABLE + (ValueError,)


class ConnectTimeout(TimeoutError):
    """The TCP or TLS connect took too long: the server is unreachable, not slow to answer."""


@contextmanager
def translate_errors(where: str, url: str, unreadable: tuple = _UNREADABLE) -> Iterator[None]:
    """Run the body; a third-party exception leaves it as one of ours, from it."""
    try:
        yield
    except RecipeError:
        raise
    except Exception as exc:
        mapped = translate(exc, where, url, unreadable)
        if mapped is None:
            raise
        raise mapped from exc


def translate(exc: Exception, where: str, url: str, unreadable: tuple = _UNREADABLE) -> Optional[RecipeError]:
    """The project's error for a third-party one; None for an exception that is
    not about the wire (a bug, which must not be disguised)."""
    why = _reason(exc)
    unreachable = f"cannot reach ComfyUI at {url} ({where}): {why}"
    hint = f"is ComfyUI running? start it with `python main.py --port {_port(url)}`"
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return ConnectError(f"TLS with {url} failed ({where}): {why}",
                            hint="check the certificate; point REQUESTS_CA_BUNDLE at your CA file")
    if isinstance(exc, (ConnectTimeout, websocket.WebSocketAddressException)):
        return ConnectError(unreachable, hint=hint)
    if isinstance(exc, (websocket.WebSocketTimeoutException, TimeoutError)):
        return RunTimeout(f"{where} got no answer from {url} in time ({why})")
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return ServerError(f"ComfyUI refused the WebSocket at {url}: HTTP {exc.status_code}",
                           exc.status_code)
    if isinstance(exc, _CLOSED):
        return ProtocolError(f"{where}: {url} closed the connection without a valid answer ({why})")
    if isinstance(exc, unreadable):    # before OSError: websocket-client's exceptions may be OSErrors too
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
    """The root cause in a few printable words, not a nested repr."""
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
    location: str = ""   # a redirect's Location: not followed (a POST must not become a GET), but said


def ca_bundle() -> Optional[str]:
    """The CA file or folder the user named, as requests and curl read it."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def tls_context() -> ssl.SSLContext:
    """The system's roots (and certifi's, where installed), or only the user's bundle."""
    ca = ca_bundle()
    if ca:
        return ssl.create_default_context(**({"capath": ca} if os.path.isdir(ca) else {"cafile": ca}))
    context = ssl.create_default_context()
    try:
        import certifi   # what requests trusted; absent on many systems, and optional
        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context


def encode_body(json_body: Any = None, files: Optional[Mapping] = None,
                data: Optional[Mapping[str, str]] = None) -> Tuple[Optional[bytes], Optional[str]]:
    """(body, Content-Type) for a JSON body, or a multipart form of `data`
    fields and `files` ({field: (filename, bytes, mime)})."""
    if json_body is not None:
        return json.dumps(json_body).encode("utf-8"), "application/json"
    if files is None:
        return None, None
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (data or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
                     .encode("utf-8") + str(value).encode("utf-8") + b"\r\n")
    for name, (filename, content, mime) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"; '
                     f'filename="{_quoted(filename)}"\r\nContent-Type: {mime}\r\n\r\n'.encode("utf-8")
                     + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode("ascii"), f"multipart/form-data; boundary={boundary}"


def _quoted(text: str) -> str:
    """A form field or file name inside quotes (the browsers' escaping)."""
    return str(text).replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)   # RemoteDisconnected is one
# A kept connection a POST may be sent on: one answered on this recently. A POST
# is never sent twice, so it must not meet a server's idle close (aiohttp's comes
# after 75 s, Apache's after 5 s); an older one is replaced by a fresh connection.
POST_REUSE_S = 2.0


class Http:
    """HTTP/1.1 through http.client; `request` never raises anything but our errors.

    One connection per server, kept alive between requests (a run makes about
    six). A kept connection the server has closed meanwhile (a `recipe watch`
    idles for minutes) is noticed before it is used; a GET that still meets
    a closed one is sent once more on a fresh connection, a POST never (it
    may have been acted on), so a POST takes a kept connection only within
    POST_REUSE_S of its last answer. One request at a time: a lock
    serialises callers on other threads."""

    def __init__(self):
        self._held: Dict[Tuple[str, str, Optional[int]], Tuple[HTTPConnection, float]] = {}
        self._lock = threading.Lock()
        self._tls: Optional[ssl.SSLContext] = None

    def request(self, method: str, url: str, where: str, *, headers: Mapping[str, str],
                timeout: Tuple[float, float], params: Optional[Mapping] = None, json: Any = None,
                files: Optional[Mapping] = None, data: Optional[Mapping] = None) -> Answer:
        parts = urlsplit(url)
        body, kind = encode_body(json, files, data)
        sent = {**headers, **({"Content-Type": kind} if kind else {})}
        query = "&".join(q for q in (parts.query, urlencode(params or {})) if q)
        target = (parts.path or "/") + (f"?{query}" if query else "")
        with self._lock, translate_errors(where, url):
            return self._exchange(parts, method, target, body, sent, timeout)

    def _exchange(self, parts: SplitResult, method: str, target: str, body: Optional[bytes],
                  headers: dict, timeout: Tuple[float, float]) -> Answer:
        key = (parts.scheme, parts.hostname or "", parts.port)
        conn = self._kept(key, method)
        for attempt in (1, 2):
            reused, conn = conn is not None, conn or self._connect(parts, timeout)
            try:
                conn.sock.settimeout(timeout[1])   # this request's limit, on a kept socket too
                answer, keep = _send(conn, method, target, body, headers)
            except _STALE:
                conn.close()
                if not reused or method != "GET" or attempt == 2:
                    raise
                conn = None
                continue
            except BaseException:
                conn.close()
                raise
            if keep:
                self._held[key] = (conn, time.monotonic())
            else:
                conn.close()
            return answer
        raise AssertionError("unreachable")   # the loop returns or raises

    def _kept(self, key, method: str) -> Optional[HTTPConnection]:
        """The kept connection to this server, if it is safe for `method`."""
        conn, answered_at = self._held.pop(key, (None, 0.0))
        if conn is not None and (_dropped(conn) or (
                method != "GET" and time.monotonic() - answered_at > POST_REUSE_S)):
            conn.close()
            conn = None
        return conn

    def _connect(self, parts: SplitResult, timeout: Tuple[float, float]) -> HTTPConnection:
        """A connected socket to the server, through its proxy if any."""
        secure, host = parts.scheme == "https", parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        proxy = proxy_for(host, port, secure)
        if secure:
            conn: HTTPConnection = HTTPSConnection(proxy.host if proxy else host, proxy.port if proxy else port,
                                                   timeout=timeout[0], context=self.tls())
            if proxy:
                if ":" in host and sys.version_info < (3, 12):   # 3.11 writes CONNECT fd00::5:443
                    raise ConnectError(f"cannot reach {host} through https_proxy on Python "
                                       f"{sys.version.split()[0]}: IPv6 needs Python 3.12",
                                       hint="add the server to no_proxy, or use its host name")
                conn.set_tunnel(host, port, headers=proxy.headers())
        else:
            conn = _ProxiedHTTP(proxy, f"http://{_bracketed(host)}:{port}", timeout=timeout[0]) if proxy \
                else HTTPConnection(host, port, timeout=timeout[0])
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectTimeout(f"no connection within {timeout[0]:g} s") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def tls(self) -> ssl.SSLContext:
        """The TLS settings of every https:// request and wss:// socket (built once)."""
        if self._tls is None:
            self._tls = tls_context()
        return self._tls

    def close(self) -> None:
        with self._lock:
            for conn, _ in self._held.values():
                conn.close()
            self._held.clear()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _ProxiedHTTP(HTTPConnection):
    """Plain HTTP through a proxy: the request line carries the whole URL."""

    def __init__(self, proxy, origin: str, timeout: float):
        super().__init__(proxy.host, proxy.port, timeout=timeout)
        self._origin, self._proxy_headers = origin, proxy.headers()

    def request(self, method, url, body=None, headers=None, **kwargs):
        return super().request(method, self._origin + url, body=body,
                               headers={**(headers or {}), **self._proxy_headers}, **kwargs)


def _send(conn: HTTPConnection, method: str, target: str, body: Optional[bytes],
          headers: dict) -> Tuple[Answer, bool]:
    """One request and its whole answer, read in pieces up to MAX_BODY; and
    whether the connection may be kept."""
    conn.request(method, target, body=body, headers=headers)
    resp = conn.getresponse()
    too_large = ProtocolError(f"{method} {target}: the answer is larger than {MAX_BODY} bytes")
    if resp.length is not None and resp.length > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    while chunk := resp.read(1 << 20):
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    if resp.length:   # http.client returns a body shorter than its Content-Length without a word
        raise ProtocolError(f"{method} {target}: the answer was cut short "
                            f"({size} bytes of {size + resp.length})")
    return (Answer(resp.status, b"".join(chunks), resp.getheader("Location") or ""),
            not resp.will_close and resp.isclosed())


def _dropped(conn: HTTPConnection) -> bool:
    """A kept connection the server has closed (it reads as ready: EOF) or
    that has stray bytes waiting: not safe to send on."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class WebSocket:
    """One websocket-client connection behind three calls.

    `receive` answers ("text" | "binary", payload), ("timeout", b"") when
    nothing came in time, or ("closed", b"") once the peer has gone (the
    socket is shut then). EventStream accepts anything with these calls
    through its `connect=` seam, which is how its reconnect logic is tested."""

    def __init__(self, url: str, *, headers: Mapping[str, str], timeout: float, sslopt: dict):
        self.url = url
        with translate_errors("WebSocket connect", url, _WS_UNREADABLE):
            self._ws = websocket.create_connection(url, timeout=timeout, sslopt=sslopt,
                                                   header=[f"{k}: {v}" for k, v in headers.items()],
                                                   suppress_origin=True,   # avoid the Origin 403
                                                   # its pure-Python UTF-8 check costs ~0.5 ms a frame;
                                                   # parse_json refuses a frame that is not UTF-8 anyway
                                                   skip_utf8_validation=True)

    def send_text(self, text: str, where: str = "WebSocket") -> None:
        with translate_errors(where, self.url, _WS_UNREADABLE):
            self._ws.send(text)

    def receive(self, timeout: float) -> Tuple[str, bytes]:
        with translate_errors("WebSocket", self.url, _WS_UNREADABLE):
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
