"""EventStream's reconnect logic in milliseconds, through its `connect=` seam: the
sockets are scripted, the server side is a stand-in with `timeouts` and `history`.
Everything that needs real sockets is in test_client.py."""
from __future__ import annotations

import json
import struct

import pytest

from compiler.comfy.address import ServerAddress, Timeouts
from compiler.comfy.events import EventStream, outcome_from_history
from compiler.errors import ConnectError, ProtocolError, RunTimeout

PID = "p-1"
ENTRY = {"status": {"status_str": "success", "completed": True,
                    "messages": [["execution_start", {"prompt_id": PID}],
                                 ["execution_success", {"prompt_id": PID}]]},
         "outputs": {"save": {"images": []}}}


def text(kind: str, **data) -> tuple:
    return "text", json.dumps({"type": kind, "data": data}).encode()


class Socket:
    """A scripted socket: its frames, then ("closed", b"") or, with `hold`, silence."""

    def __init__(self, frames, hold: bool = False):
        self.frames, self.hold = list(frames), hold
        self.sent, self.closed = [], False

    def send_text(self, text: str, where: str = "WebSocket") -> None:
        self.sent.append(json.loads(text))

    def receive(self, timeout: float) -> tuple:
        if self.frames:
            return self.frames.pop(0)
        return ("timeout", b"") if self.hold else ("closed", b"")

    def close(self) -> None:
        self.closed = True


class Server:
    """What the stream asks of a client besides the socket: the address, the limits,
    GET /history (None until `done` says the prompt has ended)."""

    address = ServerAddress("http://h:1", "ws://h:1")

    def __init__(self, sockets, timeouts=Timeouts(idle=2.0), done=lambda server: False):
        self.sockets, self.timeouts, self.done = list(sockets), timeouts, done
        self.urls, self.history_calls = [], 0

    def connect(self, url: str):
        self.urls.append(url)
        item = self.sockets.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def history(self, prompt_id: str):
        self.history_calls += 1
        return ENTRY if self.done(self) else None


def stream_for(server: Server, **kwargs) -> EventStream:
    return EventStream(server, "me", connect=server.connect, **kwargs)


def test_a_dropped_socket_is_reconnected_and_the_end_still_seen():
    second = Socket([text("executing", node="b", prompt_id=PID),
                     text("executing", node=None, prompt_id=PID)], hold=True)
    first = Socket([text("execution_start", prompt_id=PID), text("executing", node="a", prompt_id=PID)])
    server = Server([first, second], done=lambda s: not second.frames)
    outcome = stream_for(server).wait(PID)
    assert outcome.status == "success" and outcome.history is ENTRY
    assert [e.data.get("node") for e in outcome.events if e.type == "executing"] == ["a", "b", None]
    assert server.urls == ["ws://h:1/ws?clientId=me"] * 2
    assert first.sent == second.sent == [{"type": "feature_flags",
                                          "data": {"supports_preview_metadata": True}}]


def test_reconnecting_backs_off_until_the_server_is_back():
    last = Socket([text("executing", node=None, prompt_id=PID)], hold=True)
    refused = ConnectError("cannot reach ComfyUI")
    server = Server([Socket([text("execution_start", prompt_id=PID)]), refused, refused, last],
                    done=lambda s: not last.frames)
    outcome = stream_for(server, preview_metadata=False).wait(PID)
    assert outcome.status == "success" and len(server.urls) == 4 and last.sent == []


def test_history_brings_the_end_the_socket_lost():
    calls = []
    server = Server([Socket([text("execution_start", prompt_id=PID)]), Socket([], hold=True)],
                    done=lambda s: calls.append(1) or len(calls) >= 2)
    outcome = stream_for(server).wait(PID)
    assert outcome.status == "success" and [e.type for e in outcome.events] == ["execution_start"]
    assert len(server.urls) == 2 and server.history_calls == 2   # asked at once after the reconnect


def test_no_news_is_a_timeout_that_names_the_last_error():
    server = Server([Socket([]), ConnectError("refused, again")], timeouts=Timeouts(idle=0.2))
    server.sockets += [ConnectError("refused, again")] * 100
    with pytest.raises(RunTimeout, match=r"no news of prompt p-1 for 0.2s \(Timeouts.idle\); "
                                         "last error: refused, again"):
        stream_for(server).wait(PID)


def test_events_of_another_prompt_wait_for_their_turn():
    sock = Socket([text("execution_start", prompt_id="other"), text("executing", node="x"),
                   text("executing", node=None, prompt_id="other"),
                   text("execution_start", prompt_id=PID), text("executing", node=None, prompt_id=PID)],
                  hold=True)
    server = Server([sock], done=lambda s: True)
    stream = stream_for(server)
    assert stream.wait(PID).status == "success"
    other = stream.wait("other")   # read meanwhile, kept for its own wait
    assert [(e.type, e.data.get("node")) for e in other.events] == [
        ("execution_start", None), ("executing", "x"), ("executing", None)]


def test_binary_frames():
    meta = json.dumps({"node_id": "sampler", "prompt_id": PID}).encode()
    sock = Socket([("binary", struct.pack(">II", 4, len(meta)) + meta + b"\xff\xd8jpeg"),
                   ("binary", struct.pack(">II", 3, 2) + b"n1hello"),
                   text("executing", node=None, prompt_id=PID)], hold=True)
    outcome = stream_for(Server([sock], done=lambda s: True)).wait(PID)
    preview, = [e for e in outcome.events if e.type == "preview"]
    assert preview.payload == b"\xff\xd8jpeg" and preview.data["node_id"] == "sampler"
    bad = Socket([("binary", b"\x00\x00")], hold=True)
    with pytest.raises(ProtocolError, match="2-byte binary frame"):
        stream_for(Server([bad])).wait(PID)
    garbled = Socket([("text", b"{not json")], hold=True)
    with pytest.raises(ProtocolError, match="text frame that is not JSON"):
        stream_for(Server([garbled])).wait(PID)


def test_outcome_from_history_alone():
    error = {"status": {"status_str": "error", "messages": [
        ["execution_start", {}], ["execution_error", {"node_id": "sampler", "exception_message": "x"}]]}}
    assert outcome_from_history([], ENTRY).status == "success"
    failed = outcome_from_history([], error)
    assert failed.status == "error" and failed.error["node_id"] == "sampler"
    assert outcome_from_history([], {"status": {"status_str": "error"}}).status == "error"
