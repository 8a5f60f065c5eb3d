"""The WebSocket side of a run: events of our prompts, and how each one ended.

Protocol facts are in ../shared/comfyui/REFERENCE.md (sections 0, A2, E): a
prompt is done at `executing` with `node: null` and our `prompt_id`, after
which `/history` may still be `{}` for a moment. A socket that drops is
reconnected with backoff while /history is polled, and after a reconnect
/history is also polled now and then, because messages were lost meanwhile.
The socket comes from `connect(url)` (ComfyClient.connect_websocket unless a
test hands in its own), so this module never touches websocket-client.
"""
from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple, Union
from urllib.parse import quote

from compiler.comfy.transport import parse_json
from compiler.ir.nodes import TERMINAL_EVENTS
from compiler.errors import ProtocolError, RunError, RunTimeout, UnknownPrompt

__all__ = ["Event", "Outcome", "Clock", "EventStream", "outcome_from_history", "TERMINAL"]

TERMINAL = TERMINAL_EVENTS   # the event that ends a prompt -> its outcome (ir/nodes.py holds the fact)
_TICK = 0.5         # longest blocking WebSocket read, so deadlines are checked often
_LOSSY_POLL = 1.0   # after a reconnect, also poll /history this often: messages were lost


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
    messages: Tuple[Tuple[str, dict], ...] = ()   # history status.messages, parsed once
    history_status: Optional[str] = None          # history status.status_str

    def first(self, kind: str) -> Optional[dict]:
        """The data of the first `kind` message: from the socket, else from history."""
        found = next((e.data for e in self.events if e.type == kind), None)
        return found if found is not None else next((d for k, d in self.messages if k == kind), None)


def outcome_from_history(events: list, history: dict) -> Outcome:
    """How the prompt ended: the terminal event from the socket, else from
    history status.messages, else history's status_str."""
    status = history.get("status") if isinstance(history.get("status"), dict) else {}
    raw = status.get("messages") if isinstance(status.get("messages"), list) else []
    messages = tuple((m[0], m[1]) for m in raw if isinstance(m, list) and len(m) == 2
                     and isinstance(m[0], str) and isinstance(m[1], dict))
    kind, data = next(((k, d) for k, d in [(e.type, e.data) for e in reversed(events)]
                       + list(messages[::-1]) if k in TERMINAL), (None, None))
    status_str = status.get("status_str") if isinstance(status.get("status_str"), str) else None
    result = TERMINAL.get(kind) or ("success" if status_str == "success" else "error")
    return Outcome(result, events, history, None if result == "success" else data, messages, status_str)


class Clock:
    """Idle and total deadlines of one wait(); `touch` whenever there is news."""

    def __init__(self, timeouts: Any, prompt_id: str):
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
    """The WebSocket of one client_id; `wait` follows one prompt to its end.

    `client` gives `address.ws_base`, `timeouts` and `history(prompt_id)`
    (and `finished(prompt_id)`, which asks /api/jobs where the server has it);
    `connect(url)` opens a socket with `send_text`, `receive(timeout)` and
    `close` (see transport.WebSocket)."""

    def __init__(self, client, client_id: str, preview_metadata: bool = True, *,
                 connect: Optional[Callable[[str], Any]] = None):
        self.client_id = client_id
        self._client, self._metadata = client, preview_metadata
        self._open = connect or client.connect_websocket
        self._url = f"{client.address.ws_base}/ws?clientId={quote(client_id, safe='')}"
        self._ws = None
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
        ws = self._open(self._url)
        if self._metadata:   # then previews carry node and prompt ids (frame type 4)
            ws.send_text(json.dumps({"type": "feature_flags",
                                     "data": {"supports_preview_metadata": True}}),
                         "WebSocket connect")
        self._ws = ws

    def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()

    def wait(self, prompt_id: str, on_event: Optional[Callable[[Event], None]] = None,
             at_success: bool = False) -> Outcome:
        """Events of `prompt_id` until it ends, then its history. Raises RunTimeout.
        With `at_success`, a prompt that succeeded ends at `execution_success`,
        its outputs taken from the `executed` messages, without waiting for the
        server's housekeeping and /history (when every output came with one)."""
        clock = Clock(self._client.timeouts, prompt_id)
        events: list[Event] = []
        backlog = self._backlog.pop(prompt_id, [])
        while True:
            item = backlog.pop(0) if backlog else self._next(prompt_id, clock)
            if isinstance(item, dict):   # the socket missed the end; history has it
                return outcome_from_history(events, item)
            if item is None:
                continue
            events.append(item)
            if on_event is not None:
                on_event(item)
            if at_success and item.type == "execution_success" and item.data.get("prompt_id") == prompt_id:
                entry = _entry_from_events(events)
                if entry is not None:
                    return outcome_from_history(events, entry)
            if item.type == "executing" and item.data.get("node") is None \
                    and item.data.get("prompt_id") == prompt_id:
                return outcome_from_history(events, self._history_after_end(prompt_id, clock))

    def _next(self, prompt_id: str, clock: Clock) -> Union[Event, dict, None]:
        """One event of ours, a finished history entry, or None (nothing for us yet)."""
        clock.check()
        if self._ws is None:
            return self._recover(prompt_id, clock)
        if self._lossy and time.monotonic() - self._polled >= _LOSSY_POLL:
            self._polled = time.monotonic()
            try:
                entry = self._finished(prompt_id)
                if entry is not None:
                    return entry
            except UnknownPrompt:
                raise
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

    def _recover(self, prompt_id: str, clock: Clock) -> Optional[dict]:
        """The socket dropped: poll /history and reconnect, with backoff, until one works."""
        delay = 0.05
        while True:
            clock.check()
            try:
                entry = self._finished(prompt_id)
                if entry is not None:
                    return entry
                self._connect()
                self._lossy, self._polled = True, 0.0   # poll history at once, then now and then
                return None
            except UnknownPrompt:
                raise
            except RunError as exc:
                clock.error = exc
            time.sleep(max(0.0, min(delay, clock.remaining())))
            delay = min(delay * 2, 2.0)

    def _history_after_end(self, prompt_id: str, clock: Clock) -> dict:
        """History is written just before the final `executing`, but may lag (fact 3)."""
        delay = 0.02
        while True:
            entry = self._finished(prompt_id)
            if entry is not None:
                return entry
            clock.check()
            time.sleep(max(0.0, min(delay, clock.remaining())))
            delay = min(delay * 2, 0.5)

    def _finished(self, prompt_id: str) -> Optional[dict]:
        """The history entry once the prompt ended (client.finished), else None."""
        finished = getattr(self._client, "finished", None)
        return finished(prompt_id) if finished is not None else self._client.history(prompt_id)

    def _receive(self, timeout: float) -> Optional[Event]:
        """One frame as an Event; None if nothing came or the socket dropped (then _ws is None)."""
        kind, payload = self._ws.receive(timeout)
        if kind == "timeout":
            return None
        if kind == "closed":
            self._ws = None
            return None
        if kind == "binary":
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
            meta = parse_json(frame[8:8 + word], f"WebSocket {self._url} sent preview "
                                                 "metadata that is not JSON")
            return Event("preview", meta if isinstance(meta, dict) else {}, now, frame[8 + word:])
        if kind == 3:
            node_id, text = _utf8(frame[8:8 + word], self._url), _utf8(frame[8 + word:], self._url)
            return Event("text", {"node_id": node_id, "text": text}, now)
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


def _entry_from_events(events: list) -> Optional[dict]:
    """A history entry built from what the socket said: outputs from the
    `executed` messages, status from the lifecycle ones. None if some output
    node reported no output (a cached one may say `null`): ask /history then."""
    executed = [e.data for e in events if e.type == "executed"]
    if not executed or any(not isinstance(d.get("output"), dict) for d in executed):
        return None
    outputs: dict = {}
    for d in executed:   # a node may report more than once (SaveLatent after SaveImage): merge its lists
        for key, refs in d["output"].items():
            outputs.setdefault(str(d.get("node")), {}).setdefault(key, []).extend(refs if isinstance(refs, list) else [])
    messages = [[e.type, e.data] for e in events if e.type in ("execution_start", "execution_cached")
                or e.type in TERMINAL]
    return {"outputs": outputs, "status": {"status_str": "success", "completed": True, "messages": messages}}


def _utf8(data: bytes, url: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ProtocolError(f"WebSocket {url} sent a text frame that is not UTF-8") from None


def _text_event(payload: bytes, url: str) -> Event:
    message = parse_json(payload, f"WebSocket {url} sent a text frame that is not JSON: {payload[:80]!r}")
    data = (message.get("data") or {}) if isinstance(message, dict) else None
    if not isinstance(data, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"WebSocket {url} sent a message of the wrong shape: {payload[:80]!r}")
    return Event(message["type"], data, time.time())
