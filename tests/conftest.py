"""Server fixtures shared by every test that needs a ComfyUI on the other end of a socket.

    def test_x(comfy_server):
        srv = comfy_server("07-execution-error-broken-lora", history_delay=0.2)
        ComfyClient(srv.url) ...

Both factories stop what they started when the test ends.
"""
from __future__ import annotations

import socket
import threading

import pytest

try:
    from .comfy_server import ComfyTestServer
except ImportError:   # tests/ is not a package: pytest puts it on sys.path instead
    from comfy_server import ComfyTestServer


class BrokenServer:
    """A TCP listener that is not ComfyUI, to prove no third-party exception escapes.

    mode "close": hangs up at once; "garbage": answers bytes that are not HTTP;
    "silent": accepts and never answers (for timeouts).
    """

    def __init__(self, mode: str):
        self.mode = mode
        self._held: list[socket.socket] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()

    def __enter__(self) -> "BrokenServer":
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"broken-{self.mode}")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held + [self._sock]:
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            if self.mode == "silent":
                self._held.append(conn)
                continue
            if self.mode == "garbage":
                conn.settimeout(0.5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"\x00\x17\xffNOT HTTP\r\n\r\n{\"prompt_id\": tru")
                except OSError:
                    pass
            conn.close()


def _started(make):
    """A factory fixture's body: start servers on demand, stop them all after."""
    started = []

    def start(*args, **kwargs):
        server = make(*args, **kwargs).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def comfy_server():
    """comfy_server(scenario="01-success-two-characters-hooks", **kwargs) -> a running
    ComfyTestServer (kwargs: time_scale and the faults listed in tests/comfy_server.py)."""
    yield from _started(lambda scenario="01-success-two-characters-hooks", **kwargs:
                        ComfyTestServer(scenario, **kwargs))


@pytest.fixture
def broken_server():
    """broken_server("close" | "garbage" | "silent") -> a TCP listener that is not ComfyUI."""
    yield from _started(BrokenServer)


@pytest.fixture
def closed_port() -> int:
    """A localhost port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path_factory):
    """Each test its own ~/.cache/recipe (catalogue entries, compiled graphs),
    outside its tmp_path: servers on reused ports must not share kept answers."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
