"""comfy/transport.Http, the standard library's HTTP with what requests gave us:
one kept-alive connection, a kept connection the server closed never used, a
GET (never a POST) sent again when it meets one anyway, proxies from the
environment, bounded answers. Spoken to over real sockets: the transcript
server, and raw servers that misbehave on purpose."""
from __future__ import annotations

import base64
import socket
import threading
import time

import pytest

from compiler.comfy import transport
from compiler.comfy.client import ComfyClient
from compiler.comfy.proxies import proxy_for
from compiler.errors import ConnectError, ProtocolError

try:
    from .comfy_replay import load_scenario
except ImportError:
    from comfy_replay import load_scenario

S11 = "11-success-sd15-checkpoint-two-characters-cfg6"


@pytest.fixture(autouse=True)
def _no_proxy_from_outside(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_run_speaks_over_one_connection(comfy_server):
    srv = comfy_server(S11, jobs=True)
    client = ComfyClient(srv.url)
    with client.open_events("me") as stream:
        queued = client.queue_prompt(load_scenario(S11).graph, client_id="me")
        outcome = stream.wait(queued.prompt_id)
    client.view(outcome.history["outputs"]["save"]["images"][0])
    client.system_stats()
    http = [r for r in srv.requests if r.path != "/ws"]
    assert len(http) >= 4
    assert len({r.peer for r in http}) == 1, [(r.path, r.peer) for r in http]


class RawServer:
    """Answers each request with `{}`; `on_reuse` says what a connection's
    second and later requests get: "answer", or "hang-up" (close without a word)."""

    def __init__(self, on_reuse="answer", close_after_answer=False):
        self.on_reuse, self.close_after_answer = on_reuse, close_after_answer
        self.lines, self.connections = [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        with conn, conn.makefile("rb") as reader:
            for n in range(100):
                head = [reader.readline()]
                while head[-1] not in (b"\r\n", b""):
                    head.append(reader.readline())
                if head[0] == b"":
                    return
                self.lines.append(head)
                length = next((int(h.split(b":")[1]) for h in head if h.lower().startswith(b"content-length")), 0)
                reader.read(length)
                if n and self.on_reuse == "hang-up":
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                if self.close_after_answer:
                    return

    def close(self):
        self.sock.close()


@pytest.fixture
def raw():
    servers = []

    def make(**kwargs):
        servers.append(RawServer(**kwargs))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def test_a_connection_the_server_closed_is_not_used_again(raw):
    srv = raw(close_after_answer=True)   # keep-alive promised (HTTP/1.1), then closed
    client = ComfyClient(srv.url)
    for _ in range(3):
        client.interrupt()   # a POST: it would not be sent again, so it must not meet the closed one
        time.sleep(0.05)     # "meanwhile": the server's close has arrived
    assert srv.connections == 3 and len(srv.lines) == 3


def test_a_get_that_meets_a_hung_up_connection_is_sent_again(raw):
    srv = raw(on_reuse="hang-up")
    client = ComfyClient(srv.url)
    assert client.history("p") is None and client.history("p") is None
    assert srv.connections == 2 and len(srv.lines) == 3   # the second GET went twice


def test_a_post_is_never_sent_twice(raw):
    srv = raw(on_reuse="hang-up")
    client = ComfyClient(srv.url)
    client.interrupt()
    with pytest.raises(ProtocolError, match="closed the connection"):
        client.interrupt()
    assert sum(h[0].startswith(b"POST") for h in srv.lines) == 2 and srv.connections == 1


def test_an_answer_over_the_bound_is_refused(raw, monkeypatch):
    monkeypatch.setattr(transport, "MAX_BODY", 1)
    with pytest.raises(ProtocolError, match="larger than 1 bytes"):
        ComfyClient(raw().url).history("p")


def test_plain_http_through_a_proxy(raw, monkeypatch):
    proxy = raw()
    monkeypatch.setenv("http_proxy", proxy.url.replace("http://", "http://ann:s%40cret@"))
    assert ComfyClient("comfy.example:8188").history("p") is None
    head = proxy.lines[0]
    assert head[0] == b"GET http://comfy.example:8188/history/p HTTP/1.1\r\n"
    auth = base64.b64encode(b"ann:s@cret").decode()
    assert f"Proxy-Authorization: Basic {auth}\r\n".encode() in head
    assert b"Host: comfy.example:8188\r\n" in head


@pytest.mark.parametrize("no_proxy, host, bypassed", [
    ("", "comfy.example", False),
    ("*", "comfy.example", True),
    ("comfy.example", "comfy.example", True),
    ("example", "comfy.example", True),
    (".example", "comfy.example", True),
    ("ample", "comfy.example", False),
    ("10.0.0.0/8", "10.1.2.3", True),
    ("10.0.0.0/8", "11.1.2.3", False),
    ("a.b, 127.0.0.1", "127.0.0.1", True),
])
def test_no_proxy(monkeypatch, no_proxy, host, bypassed):
    monkeypatch.setenv("HTTPS_PROXY", "proxy.lan:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    found = proxy_for(host, secure=True)
    assert (found is None) == bypassed
    if found:
        assert (found.host, found.port, found.authorization) == ("proxy.lan", 3128, None)


def test_a_proxy_we_cannot_speak_to_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("http_proxy", "socks5://ann:hunter2@proxy.lan:1080")
    with pytest.raises(ConnectError) as info:
        ComfyClient("comfy.example:8188").history("p")
    assert "http_proxy" in str(info.value) and "hunter2" not in str(info.value)
