"""Which HTTP proxy a request to a server goes through, from the environment.

The same variables websocket-client reads, so that HTTP and the WebSocket
take the same road: `http_proxy` for http://, `https_proxy` for https:// (lower case
first, then upper), none for a host that `no_proxy` names (`*`, a host, a
domain with or without its leading dot, either with a `:port`, or a CIDR
block for an address).
Only http:// proxies are spoken to; https:// servers are reached through
them with CONNECT.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote, urlsplit

from compiler.errors import ConnectError

__all__ = ["Proxy", "proxy_for"]


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: Optional[str]   # a Proxy-Authorization header value, from the proxy URL's user:password

    def headers(self) -> dict:
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}


def _env(name: str) -> str:
    return os.environ.get(name, os.environ.get(name.upper(), "")).replace(" ", "")


def proxy_for(hostname: str, port: int, secure: bool) -> Optional[Proxy]:
    """The proxy for `hostname:port`, or None to connect directly."""
    if _bypassed(hostname, port, [n for n in _env("no_proxy").split(",") if n]):
        return None
    raw = _env("https_proxy" if secure else "http_proxy")
    if not raw:
        return None
    parts = urlsplit(raw if "://" in raw else "http://" + raw)
    try:
        port = parts.port or 80
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        # Never the value itself: it may carry a password.
        raise ConnectError(f"{'https' if secure else 'http'}_proxy is not an http://host:port proxy",
                           hint="recipe speaks to http:// proxies only; set no_proxy to bypass it")
    auth = None
    if parts.username:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("utf-8")
        auth = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, port, auth)


def _bypassed(hostname: str, port: int, no_proxy: list) -> bool:
    if "*" in no_proxy or hostname in no_proxy:
        return True
    if any("/" in entry for entry in no_proxy) and _in_networks(hostname, [e for e in no_proxy if "/" in e]):
        return True
    for entry in no_proxy:
        domain, _, only = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        bare = domain.lstrip(".").strip("[]")
        if bare and (not only or int(only) == port) and (hostname == bare or hostname.endswith("." + bare)):
            return True
    return False


def _has_port(entry: str) -> bool:
    """`host:8188` or `[::1]:8188`, not the bare IPv6 address `::1`."""
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and (head.endswith("]") or ":" not in head)


def _in_networks(hostname: str, networks: list) -> bool:
    import ipaddress   # only for a no_proxy that lists CIDR blocks
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return False
    for net in networks:
        try:
            if address in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False
