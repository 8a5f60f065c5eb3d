"""comfy/transport.py is the one place where third-party exceptions become ours:
every exception class that websocket-client, http.client, ssl, socket and json
define leaves `translate_errors` as a RunError, chained to the
original; an exception that is not about the wire (a bug) is not disguised."""
from __future__ import annotations

import http.client
import inspect
import json
import socket
import ssl
import types

import pytest
import websocket

from compiler.comfy.transport import ConnectTimeout, parse_json, translate_errors
from compiler.errors import ConnectError, ProtocolError, RunError, RunTimeout

MODULES = [websocket._exceptions, http.client, ssl, socket, json]


def _exception_classes():
    """Every public exception class the modules define or re-export (not warnings,
    and not the builtins they re-export, except OSError's family: socket and ssl
    raise those)."""
    seen = {}
    for module in MODULES:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if name.startswith("_") or not issubclass(cls, Exception) or issubclass(cls, Warning):
                continue
            if cls.__module__ == "builtins" and not issubclass(cls, OSError):
                continue
            seen[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return dict(sorted(seen.items()))


# What a library passes its exceptions, by parameter name, for the classes that need arguments.
_ARGS = {"pool": None, "conn": None, "response": types.SimpleNamespace(tell=lambda: 0, length_remaining=1), "message": "boom", "msg": "boom",
         "url": "http://h/", "host": "h", "reason": OSError("boom"), "error": OSError("boom"),
         "partial": 1, "expected": 2, "length": b"x", "defects": [], "unparsed_data": b"",
         "retries": 3, "doc": "", "pos": 0, "status_code": 403}


def _instance(cls):
    for args in (("boom",), ("boom", "", 0), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return cls(*[_ARGS[p.name] for p in params if p.default is inspect.Parameter.empty])


CLASSES = _exception_classes()


def test_the_libraries_define_many_exceptions():
    assert len(CLASSES) > 30   # the test below is only as good as this list
    for name in ("ssl.SSLCertVerificationError", "http.client.RemoteDisconnected",
                 "websocket._exceptions.WebSocketBadStatusException", "json.decoder.JSONDecodeError"):
        assert name in CLASSES, name


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_no_third_party_exception_escapes(name):
    original = _instance(CLASSES[name])
    with pytest.raises(RunError) as info:
        with translate_errors("GET /x", "http://127.0.0.1:9"):
            raise original
    assert info.value.__cause__ is original
    assert "http://127.0.0.1:9" in str(info.value)


@pytest.mark.parametrize("exc, kind", [
    (ConnectTimeout("slow"), ConnectError),
    (ssl.SSLCertVerificationError(1, "bad cert"), ConnectError),
    (ssl.SSLError(1, "bad cert"), ConnectError),
    (socket.timeout("slow"), RunTimeout),
    (ConnectionRefusedError(111, "Connection refused"), ConnectError),
    (socket.gaierror(-2, "Name or service not known"), ConnectError),
    (ConnectionResetError(104, "reset"), ProtocolError),
    (websocket.WebSocketConnectionClosedException("gone"), ProtocolError),
    (http.client.RemoteDisconnected("Remote end closed connection without response"), ProtocolError),
    (http.client.BadStatusLine("SSH-2.0"), ProtocolError),
    (json.JSONDecodeError("Expecting value", "", 0), ProtocolError),
    (http.client.IncompleteRead(b""), ProtocolError),
])
def test_each_kind_of_failure_has_its_own_error(exc, kind):
    with pytest.raises(kind):
        with translate_errors("POST /prompt", "http://127.0.0.1:9"):
            raise exc


def test_a_bug_is_not_disguised():
    with pytest.raises(ZeroDivisionError):
        with translate_errors("GET /x", "http://127.0.0.1:9"):
            1 / 0


def test_our_errors_pass_untouched():
    error = ConnectError("already ours")
    with pytest.raises(ConnectError) as info:
        with translate_errors("GET /x", "http://127.0.0.1:9"):
            raise error
    assert info.value is error


def test_parse_json():
    assert parse_json(b'{"a": 1}', "unused") == {"a": 1}
    for bad in (b"{", b"\xff\xfe\x00", b""):
        with pytest.raises(ProtocolError, match="^the body is not JSON$"):
            parse_json(bad, "the body is not JSON")
