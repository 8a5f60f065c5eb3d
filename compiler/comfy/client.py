"""ComfyClient: the only module that talks to a ComfyUI server (HTTP + WebSocket).

Protocol facts are in ../shared/comfyui/REFERENCE.md (sections 0, A, E): open the WebSocket
*before* queueing and send its id as `client_id`; a prompt is done at `executing` with
`node: null` and our `prompt_id`, after which `/history` may still be `{}` for a moment; a 200
from POST /prompt can still carry node_errors. Every exception from requests, websocket-client,
ssl, socket or json becomes one of ours in one place, `_translate_errors`.
"""
from __future__ import annotations

import json
import mimetypes
import os
import re
import ssl
import struct
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union
from urllib.parse import quote, urlsplit

import requests
import urllib3
import websocket

from compiler.errors import (ConnectError, ProtocolError, RecipeError, RejectedError, RunError,
                     RunTimeout, ServerError)

__all__ = ["ServerAddress", "parse_server", "Timeouts", "Queued", "Event", "Outcome",
           "ComfyClient", "EventStream"]

_TERMINAL = {"execution_success": "success", "execution_error": "error",
             "execution_interrupted": "interrupted"}
_TOP_LEVEL = ("invalid_prompt", "prompt_no_outputs", "no_prompt")
_TICK = 0.5         # longest blocking WebSocket read, so deadlines are checked often
_LOSSY_POLL = 1.0   # after a reconnect, also poll /history this often: messages were lost
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
           websocket.WebSocketConnectionClosedException)
_UNREADABLE = (requests.exceptions.RequestException, websocket.WebSocketException,
               urllib3.exceptions.HTTPError, HTTPException, ValueError, LookupError)


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
    rest = netloc + parts.path.rstrip("/")
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return ServerAddress(f"{parts.scheme}://{rest}", f"{ws_scheme}://{rest}")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0           # TCP/TLS connect and the WebSocket handshake
    read: float = 30.0             # one HTTP answer
    idle: float = 600.0            # no WS message and no history progress for this long
    total: Optional[float] = None  # one wait(), start to finish


@dataclass(frozen=True)
class Queued:
    prompt_id: str
    number: Any


@dataclass(frozen=True)
class Event:
    type: str
    data: dict
    received: float                                              # epoch seconds
    payload: Optional[bytes] = field(default=None, repr=False)   # preview image bytes


@dataclass
class Outcome:
    status: str                    # "success" | "error" | "interrupted"
    events: list
    history: dict
    error: Optional[dict] = None   # the execution_error / execution_interrupted data


@contextmanager
def _translate_errors(where: str, url: str) -> Iterator[None]:
    """The one place where third-party exceptions become the project's own."""
    try:
        yield
    except RecipeError:
        raise
    except Exception as exc:
        mapped = _translate(exc, where, url)
        if mapped is None:
            raise
        raise mapped from exc


def _translate(exc: Exception, where: str, url: str) -> Optional[RecipeError]:
    why = _reason(exc)
    unreachable = f"cannot reach ComfyUI at {url} ({where}): {why}"
    hint = f"is ComfyUI running? start it with `python main.py --port {urlsplit(url).port or 8188}`"
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


def _env_headers() -> dict[str, str]:
    """RECIPE_TOKEN -> bearer; RECIPE_HEADERS -> a JSON object or `Name: value` lines."""
    token = os.environ.get("RECIPE_TOKEN", "").strip()
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
        if not _HEADER_NAME.match(name) or not isinstance(value, str) or re.search("[\r\n]", value):
            raise RecipeError(f"RECIPE_HEADERS entry {number} is not a valid header: "
                              "use `Name: value` lines or a JSON object of strings")
        headers[name] = value.strip()
    return headers


def _excerpt(resp: requests.Response) -> str:
    text = " ".join(resp.content[:400].decode("utf-8", "replace").split())
    return (text[:160] + "…") if len(text) > 160 else (text or "(empty body)")


def _check_status(resp: requests.Response, method: str, path: str) -> None:
    if not 200 <= resp.status_code < 300:
        raise ServerError(f"ComfyUI answered {method} {path} with HTTP {resp.status_code}: "
                          f"{_excerpt(resp)}", resp.status_code)


def _decode(resp: requests.Response, method: str, path: str) -> dict:
    try:
        body = json.loads(resp.content)
    except ValueError:
        raise ProtocolError(f"{method} {path} answered HTTP {resp.status_code} with a body that "
                            f"is not JSON: {_excerpt(resp)}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{method} {path} answered JSON of the wrong shape: "
                            f"expected an object, got {type(body).__name__}")
    return body


def _rejected(answer: dict, prompt_id: str = "") -> RejectedError:
    """One line per (node, error), plus the top-level error when it is the whole story."""
    node_errors = answer.get("node_errors") or {}
    if not isinstance(node_errors, dict):
        raise ProtocolError("POST /prompt: node_errors is not an object")
    errors = []
    for node_id, entry in node_errors.items():
        entry = entry if isinstance(entry, dict) else {}
        where = f"node {node_id} ({entry.get('class_type', '?')})"
        for err in entry.get("errors") or [{"message": "rejected"}]:
            errors.append(RecipeError(f"{where}: {_parts(err)}"))
    top = answer.get("error")
    top = top if isinstance(top, dict) else {"message": top}
    if top.get("type") in _TOP_LEVEL or not errors:
        errors.append(RecipeError(_parts(top) or "ComfyUI refused the prompt without saying why"))
    return RejectedError(errors, node_errors=node_errors, prompt_id=prompt_id)


def _parts(error: dict) -> str:
    return ": ".join(str(p) for p in (error.get("message"), error.get("details")) if p)


def _unsafe(name: Any) -> bool:
    return not isinstance(name, str) or name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name)


class ComfyClient:
    """HTTP calls and event streams for one ComfyUI server."""

    def __init__(self, server: str, *, headers: Optional[dict] = None,
                 timeouts: Timeouts = Timeouts(), session: Optional[requests.Session] = None):
        self.address = parse_server(server)
        self.timeouts = timeouts
        self._headers = {**_env_headers(), **(headers or {})}
        self._session = session or requests.Session()

    def describe(self) -> dict:
        """For a run record: where we talked to, never a credential or a header value."""
        return {"server": self.address.http_base, "websocket": self.address.ws_base,
                "headers": sorted(self._headers), "timeouts": asdict(self.timeouts)}

    def _call(self, method: str, path: str, *, stream: bool = False, **kwargs) -> requests.Response:
        url = self.address.http_base + path
        with _translate_errors(f"{method} {path}", url):
            resp = self._session.request(method, url, headers=self._headers, stream=stream,
                                         timeout=(self.timeouts.connect, self.timeouts.read), **kwargs)
            if not stream:
                resp.content   # read the body here, so its errors are translated too
        return resp

    def _json(self, method: str, path: str, **kwargs) -> dict:
        resp = self._call(method, path, **kwargs)
        _check_status(resp, method, path)
        return _decode(resp, method, path)

    def object_info(self) -> dict:
        return self._json("GET", "/object_info")

    def system_stats(self) -> dict:
        body = self._json("GET", "/system_stats")
        if not isinstance(body.get("system"), dict):
            raise ProtocolError("GET /system_stats: the answer has no `system` object")
        return body

    def queue_prompt(self, graph: dict, *, client_id: str, extra_data: Optional[dict] = None,
                     prompt_id: Optional[str] = None) -> Queued:
        """POST /prompt. Refusals raise RejectedError, also on a 200 that skipped outputs."""
        body = {"prompt": graph, "client_id": client_id, "extra_data": extra_data,
                "prompt_id": prompt_id}
        resp = self._call("POST", "/prompt", json={k: v for k, v in body.items() if v is not None})
        if resp.status_code == 400:
            try:
                answer = _decode(resp, "POST", "/prompt")
            except ProtocolError:
                answer = {}
            if "error" in answer or "node_errors" in answer:
                raise _rejected(answer)
        _check_status(resp, "POST", "/prompt")
        answer = _decode(resp, "POST", "/prompt")
        pid = answer.get("prompt_id")
        if not isinstance(pid, str) or not pid:
            raise ProtocolError("POST /prompt: the answer has no prompt_id")
        if answer.get("node_errors"):   # queued, but only its valid outputs (fact 13)
            raise _rejected(answer, prompt_id=pid)
        return Queued(pid, answer.get("number"))

    def history(self, prompt_id: str) -> Optional[dict]:
        """The history entry of a finished prompt, or None while the server says `{}`."""
        path = f"/history/{quote(prompt_id, safe='')}"
        body = self._json("GET", path)
        if body and not isinstance(body.get(prompt_id), dict):
            raise ProtocolError(f"GET {path}: the answer has no entry for prompt {prompt_id}")
        return body[prompt_id] if body else None

    def view(self, image_ref: Mapping) -> bytes:
        """Download one output ({"filename","subfolder","type"}, as history reports it)."""
        ref = image_ref if isinstance(image_ref, Mapping) else {}
        name, sub = ref.get("filename"), ref.get("subfolder") or ""
        if not name or _unsafe(name) or _unsafe(sub) or re.search(r"[/\\]", name):
            raise ProtocolError(f"the server reported an unsafe file reference: {image_ref!r}")
        params = {"filename": name, "subfolder": sub, "type": ref.get("type") or "output"}
        resp = self._call("GET", "/view", params=params, stream=True)
        with _translate_errors("GET /view", self.address.http_base + "/view"), resp:
            _check_status(resp, "GET", "/view")
            return b"".join(resp.iter_content(64 * 1024))

    def interrupt(self, prompt_id: Optional[str] = None) -> None:
        """Stop `prompt_id` if it is the one running (None: whatever runs)."""
        resp = self._call("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})
        _check_status(resp, "POST", "/interrupt")

    def delete_queued(self, prompt_ids: list) -> None:
        """Drop prompts that have not started (POST /queue delete); a running
        one is not affected: interrupt it."""
        resp = self._call("POST", "/queue", json={"delete": list(prompt_ids)})
        _check_status(resp, "POST", "/queue")

    def queue(self) -> dict:
        body = self._json("GET", "/queue")
        if not all(isinstance(body.get(k), list) for k in ("queue_running", "queue_pending")):
            raise ProtocolError("GET /queue: expected queue_running and queue_pending lists")
        return body

    def upload_image(self, path: Union[str, Path], *, subfolder: str = "",
                     overwrite: bool = False, name: Optional[str] = None) -> dict:
        """POST /upload/image into the input folder, as `name` (default: the
        file's own name); returns {"name","subfolder","type"}."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RecipeError(f"cannot read image {path}: {exc.strerror or exc}") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = self._json("POST", "/upload/image", files={"image": (name or path.name, data, mime)},
                          data={"type": "input", "subfolder": subfolder,
                                "overwrite": "true" if overwrite else "false"})
        if not isinstance(body.get("name"), str):
            raise ProtocolError("POST /upload/image: the answer has no file name")
        return body

    def open_events(self, client_id: Optional[str] = None, *,
                    preview_metadata: bool = True) -> "EventStream":
        """Connect the WebSocket; do this before queue_prompt, with the same client_id."""
        return EventStream(self, client_id or uuid.uuid4().hex, preview_metadata)

    def _sslopt(self) -> dict:
        """websocket-client ignores REQUESTS_CA_BUNDLE: hand it the CA requests would use."""
        verify = self._session.verify
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") \
            or (verify if isinstance(verify, str) else None)
        return {} if not ca else {"ca_cert_path": ca} if os.path.isdir(ca) else {"ca_certs": ca}

    def close(self) -> None:
        self._session.close()


class _Clock:
    """Idle and total deadlines of one wait(); `touch` whenever there is news."""

    def __init__(self, timeouts: Timeouts, prompt_id: str):
        self.t, self.prompt_id, self.error = timeouts, prompt_id, None
        self.start = self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def remaining(self) -> float:
        now = time.monotonic()
        left = self.last + self.t.idle - now
        return left if self.t.total is None else min(left, self.start + self.t.total - now)

    def check(self) -> None:
        if self.remaining() > 0:
            return
        if self.t.total is not None and time.monotonic() - self.start >= self.t.total:
            raise RunTimeout(f"prompt {self.prompt_id} did not finish within "
                             f"{self.t.total:g}s (Timeouts.total)")
        last = f"; last error: {self.error}" if self.error else ""
        raise RunTimeout(f"no news of prompt {self.prompt_id} for {self.t.idle:g}s "
                         f"(Timeouts.idle){last}")


class EventStream:
    """The WebSocket of one client_id; `wait` follows one prompt to its end."""

    def __init__(self, client: ComfyClient, client_id: str, preview_metadata: bool = True):
        self.client_id = client_id
        self._client, self._metadata = client, preview_metadata
        self._url = f"{client.address.ws_base}/ws?clientId={quote(client_id, safe='')}"
        self._ws: Optional[websocket.WebSocket] = None
        self._running: Optional[str] = None   # our prompt the server runs: owner of frames
        self._node: Optional[str] = None      # its current node, for type-1 previews
        self._backlog: dict[str, list] = {}   # events of other prompts, read meanwhile
        self._lossy, self._polled = False, 0.0
        self._connect()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> None:
        headers = [f"{k}: {v}" for k, v in self._client._headers.items()]
        with _translate_errors("WebSocket connect", self._url):
            ws = websocket.create_connection(self._url, timeout=self._client.timeouts.connect,
                                             header=headers, sslopt=self._client._sslopt(),
                                             suppress_origin=True)   # avoid the Origin 403
            if self._metadata:   # then previews carry node and prompt ids (frame type 4)
                ws.send(json.dumps({"type": "feature_flags",
                                    "data": {"supports_preview_metadata": True}}))
        self._ws = ws

    def close(self) -> None:
        ws, self._ws = self._ws, None
        try:
            if ws is not None:
                ws.close(timeout=0.5)
        except Exception:   # already broken: nothing useful to tell the caller
            pass

    def wait(self, prompt_id: str, on_event: Optional[Callable[[Event], None]] = None) -> Outcome:
        """Events of `prompt_id` until it ends, then its history. Raises RunTimeout."""
        clock = _Clock(self._client.timeouts, prompt_id)
        events: list[Event] = []
        backlog = self._backlog.pop(prompt_id, [])
        while True:
            item = backlog.pop(0) if backlog else self._next(prompt_id, clock)
            if isinstance(item, dict):   # the socket missed the end; history has it
                return _outcome(events, item)
            if item is None:
                continue
            events.append(item)
            if on_event is not None:
                on_event(item)
            if item.type == "executing" and item.data.get("node") is None \
                    and item.data.get("prompt_id") == prompt_id:
                return _outcome(events, self._history_after_end(prompt_id, clock))

    def _next(self, prompt_id: str, clock: _Clock) -> Union[Event, dict, None]:
        """One event of ours, a finished history entry, or None (nothing for us yet)."""
        clock.check()
        if self._ws is None:
            return self._recover(prompt_id, clock)
        if self._lossy and time.monotonic() - self._polled >= _LOSSY_POLL:
            self._polled = time.monotonic()
            try:
                entry = self._client.history(prompt_id)
                if entry is not None:
                    return entry
            except RunError as exc:   # a hiccup: the socket may still bring the end
                clock.error = exc
        event = self._receive(max(0.01, min(_TICK, clock.remaining())))
        if event is None:
            return None
        clock.touch()
        owner = event.data.get("prompt_id") or \
            (self._running if event.type in ("executing", "preview", "text") else None)
        self._track(event)
        if owner not in (None, prompt_id):
            self._backlog.setdefault(owner, []).append(event)
        return event if owner == prompt_id or (owner is None and event.type == "status") else None

    def _recover(self, prompt_id: str, clock: _Clock) -> Optional[dict]:
        """The socket dropped: poll /history and reconnect, with backoff, until one works."""
        delay = 0.05
        while True:
            clock.check()
            try:
                entry = self._client.history(prompt_id)
                if entry is not None:
                    return entry
                self._connect()
                self._lossy, self._polled = True, 0.0   # poll history at once, then now and then
                return None
            except RunError as exc:
                clock.error = exc
            time.sleep(max(0.0, min(delay, clock.remaining())))
            delay = min(delay * 2, 2.0)

    def _history_after_end(self, prompt_id: str, clock: _Clock) -> dict:
        """History is written just before the final `executing`, but may lag (fact 3)."""
        delay = 0.02
        while True:
            entry = self._client.history(prompt_id)
            if entry is not None:
                return entry
            clock.check()
            time.sleep(max(0.0, min(delay, clock.remaining())))
            delay = min(delay * 2, 0.5)

    def _receive(self, timeout: float) -> Optional[Event]:
        """One frame as an Event; None if nothing came or the socket dropped (then _ws is None)."""
        with _translate_errors("WebSocket", self._url):
            self._ws.settimeout(timeout)
            try:
                opcode, payload = self._ws.recv_data()
            except (websocket.WebSocketTimeoutException, TimeoutError):
                return None
            except (websocket.WebSocketConnectionClosedException, OSError):
                opcode, payload = websocket.ABNF.OPCODE_CLOSE, b""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                ws, self._ws = self._ws, None
                ws.shutdown()
                return None
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return self._binary(payload)
            return _text_event(payload, self._url)

    def _binary(self, frame: bytes) -> Event:
        """Binary frames (REFERENCE A2): 1 = preview, 3 = text, 4 = preview with metadata."""
        now = time.time()
        if len(frame) < 8:
            raise ProtocolError(f"WebSocket {self._url} sent a {len(frame)}-byte binary frame")
        kind, word = struct.unpack(">II", frame[:8])
        if kind == 1:
            data = {"image_type": {1: "image/jpeg", 2: "image/png"}.get(word, str(word))}
            if self._node:
                data["node_id"] = self._node
            return Event("preview", data, now, frame[8:])
        if kind == 4:
            meta = json.loads(frame[8:8 + word])
            return Event("preview", meta if isinstance(meta, dict) else {}, now, frame[8 + word:])
        if kind == 3:
            return Event("text", {"node_id": frame[8:8 + word].decode(),
                                  "text": frame[8 + word:].decode()}, now)
        return Event("binary", {"event_type": kind}, now, frame)

    def _track(self, event: Event) -> None:
        """Which of our prompts runs, and its node: frames without a prompt_id need it."""
        pid, node = event.data.get("prompt_id"), event.data.get("node")
        if event.type == "execution_start":
            self._running, self._node = pid, None
        elif event.type == "executing" and node is None and pid == self._running:
            self._running = self._node = None
        elif event.type == "executing" and node is not None:
            self._running, self._node = pid or self._running, node


def _text_event(payload: bytes, url: str) -> Event:
    try:
        message = json.loads(payload)
    except ValueError:
        raise ProtocolError(f"WebSocket {url} sent a text frame that is not JSON: "
                            f"{payload[:80]!r}") from None
    data = (message.get("data") or {}) if isinstance(message, dict) else None
    if not isinstance(data, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"WebSocket {url} sent a message of the wrong shape: {payload[:80]!r}")
    return Event(message["type"], data, time.time())


def _outcome(events: list, history: dict) -> Outcome:
    """The terminal event from the socket, else from history status.messages."""
    status = history.get("status") if isinstance(history.get("status"), dict) else {}
    messages = [(m[0], m[1]) for m in status.get("messages") or []
                if isinstance(m, list) and len(m) == 2]
    kind, data = next(((k, d) for k, d in [(e.type, e.data) for e in reversed(events)]
                       + messages[::-1] if k in _TERMINAL), (None, None))
    result = _TERMINAL.get(kind) or ("success" if status.get("status_str") == "success" else "error")
    return Outcome(result, events, history, None if result == "success" else data)
