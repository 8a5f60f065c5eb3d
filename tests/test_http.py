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
from compiler.errors import ConnectError, ProtocolError, RecipeError, ServerError

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
    """Answers each request with `answer` (default `{}`); `on_reuse` says what a
    connection's second and later requests get: "answer", or "hang-up" (close
    without a word); `delay` s before each answer."""

    def __init__(self, on_reuse="answer", close_after_answer=False, answer=None, delay=0.0):
        self.on_reuse, self.close_after_answer = on_reuse, close_after_answer
        self.answer, self.delay = answer, delay
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
                time.sleep(self.delay)
                conn.sendall(self.answer or
                             b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                if self.close_after_answer or self.answer:
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


def test_a_post_takes_a_fresh_connection_after_a_pause(raw, monkeypatch):
    monkeypatch.setattr(transport, "POST_REUSE_S", 0.0)   # every kept connection is "old" for a POST
    srv = raw()
    client = ComfyClient(srv.url)
    client.history("p")
    client.history("p")          # GETs share one connection
    client.interrupt()           # the POST does not risk the server's idle close
    assert srv.connections == 2 and len(srv.lines) == 3


def test_a_body_cut_short_is_an_error_not_an_image(raw):
    srv = raw(answer=b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\nonly-ten!!")
    with pytest.raises(ProtocolError, match=r"cut short \(10 bytes of 100\)"):
        ComfyClient(srv.url).view({"filename": "a.png", "type": "output"})


def test_an_answer_read_until_close_is_read_whole(raw):
    srv = raw(answer=b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"queue_running\": [], "
                     b"\"queue_pending\": []}")
    assert ComfyClient(srv.url).queue() == {"queue_running": [], "queue_pending": []}


def test_each_request_has_its_own_read_timeout(raw):
    from compiler.errors import RunTimeout
    srv = raw(delay=0.5)
    http = transport.Http()
    assert http.request("GET", srv.url + "/queue", "GET /queue", headers={}, timeout=(2, 5)).status == 200
    with pytest.raises(RunTimeout):   # the kept socket must not keep the first request's 5 s
        http.request("GET", srv.url + "/queue", "GET /queue", headers={}, timeout=(2, 0.1))


def test_a_header_http_cannot_carry_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("RECIPE_TOKEN", "s3cr€t")
    with pytest.raises(RecipeError, match="RECIPE_TOKEN holds characters") as info:
        ComfyClient("127.0.0.1:8188")
    assert "s3cr" not in str(info.value) and info.value.exit_code == 2


def test_a_prefix_with_unicode_is_sent_percent_encoded(raw):
    srv = raw()
    assert ComfyClient(srv.url + "/cömfy").history("p") is None
    assert srv.lines[0][0] == b"GET /c%C3%B6mfy/history/p HTTP/1.1\r\n"


def test_ipv6_through_a_proxy_keeps_its_brackets(raw, monkeypatch):
    proxy = raw()
    monkeypatch.setenv("http_proxy", proxy.url)
    ComfyClient("http://[fd00::5]:8188").history("p")
    assert proxy.lines[0][0] == b"GET http://[fd00::5]:8188/history/p HTTP/1.1\r\n"
    assert b"Host: [fd00::5]:8188\r\n" in proxy.lines[0]


def test_a_redirect_is_not_followed_but_named(raw):
    srv = raw(answer=b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://comfy.example/prompt\r\n"
                     b"Content-Length: 0\r\n\r\n")
    with pytest.raises(ServerError) as info:
        ComfyClient(srv.url).interrupt()
    text = str(info.value)
    assert "HTTP 301, a redirect to https://comfy.example/prompt" in text and "give --server" in text
    assert sum(h[0].startswith(b"POST") for h in srv.lines) == 1 and not any(h[0].startswith(b"GET") for h in srv.lines)


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
    ("gpu-box:8188", "gpu-box", True),          # a host:port entry, as requests reads it
    ("gpu-box:9000", "gpu-box", False),
    (".lan:8188", "gpu.lan", True),
    ("::1", "::1", True),                       # a bare IPv6 address is not host:port
    ("[::1]:8188", "::1", True),
])
def test_no_proxy(monkeypatch, no_proxy, host, bypassed):
    monkeypatch.setenv("HTTPS_PROXY", "proxy.lan:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    found = proxy_for(host, 8188, secure=True)
    assert (found is None) == bypassed
    if found:
        assert (found.host, found.port, found.authorization) == ("proxy.lan", 3128, None)


def test_a_proxy_we_cannot_speak_to_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("http_proxy", "socks5://ann:hunter2@proxy.lan:1080")
    with pytest.raises(ConnectError) as info:
        ComfyClient("comfy.example:8188").history("p")
    assert "http_proxy" in str(info.value) and "hunter2" not in str(info.value)
