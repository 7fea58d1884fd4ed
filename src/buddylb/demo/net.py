"""Loopback plumbing for the demo: the addresses it uses, free ports, one client request.

Owns the demo's client side: a blocking HTTP/1.1 GET (plain, or TLS without
verification) from a socket bound to a chosen 127.0.0.x source address, and the
preflight that checks every loopback address can be bound before anything starts.
Never talks to the admin API and never decides anything about stickiness.
"""
from __future__ import annotations

import errno
import socket
import ssl

from buddylb.errors import CommandError

CLIENTS: tuple[str, ...] = tuple(f"127.0.0.{n}" for n in range(11, 23))
HAND_CLIENT = "127.0.0.30"  # the address suggested for trying it by hand
TIMEOUT_S = 5.0

_ALIAS_HINT = ("buddylb demo needs the loopback addresses 127.0.0.100 (VIPs), 127.0.0.11-22 and 127.0.0.30 "
               "(clients), 127.0.1.11-14 and 127.0.1.21-22 (servers). Linux routes all of 127.0.0.0/8 to lo; "
               "on macOS or BSD add them first, e.g. `sudo ifconfig lo0 alias 127.0.0.100 up` for each address.")


def free_port(host: str) -> int:
    """A port free on `host` right now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def preflight(addresses: list[str]) -> None:
    """Fail early, with what to do, when a loopback address cannot be bound."""
    for address in addresses:
        try:
            free_port(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise CommandError(f"cannot bind {address}: {exc.strerror}. {_ALIAS_HINT}", 1) from exc
            raise CommandError(f"cannot bind {address}: {exc.strerror or exc}", 1) from exc


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the demo certificate is throwaway and self-signed
    return ctx


def fetch(source: str, host: str, port: int, *, tls: bool = False, path: str = "/") -> tuple[int, str]:
    """GET `path` on a fresh connection from `source`; returns (status, body)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(TIMEOUT_S)
    try:
        raw.bind((source, 0))
        raw.connect((host, port))
        sock = _tls_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
        with sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            reply = _read_all(sock)
    except (OSError, ssl.SSLError) as exc:
        scheme = "https" if tls else "http"
        raise CommandError(f"request from {source} to {scheme}://{host}:{port}{path} failed: {exc}", 1) from exc
    finally:
        raw.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return status, body.decode("utf-8", "replace").strip()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)
