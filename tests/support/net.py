"""Loopback helpers: free ports, client sockets bound to distinct 127.0.0.N addresses."""
from __future__ import annotations

import random
import socket
import time


def idle_connections(host: str, port: int, n: int, source=None) -> list[socket.socket]:
    """An idle flood: `n` non-blocking connections to host:port that never send a byte
    (the connect is started, not awaited), the i-th bound to `source(i)` when given.
    The caller closes them; if opening one fails, those opened so far are closed."""
    out: list[socket.socket] = []
    try:
        for i in range(n):
            s = socket.socket()
            out.append(s)
            s.setblocking(False)
            if source is not None:
                s.bind((source(i), 0))
            s.connect_ex((host, port))
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (bound then released; the kernel won't hand it out again soon)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_run(count: int, host: str = "127.0.0.1") -> int:
    """A port P such that P .. P+count-1 are all free now.

    Candidates come from below the kernel's ephemeral range (32768+): there, outgoing
    connections (and their TIME_WAIT remains after a wrk run, on odd ports) never sit,
    and bind(0) would keep offering the same port anyway."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        held = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no run of {count} free ports on {host}")


def connect_from(source: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def http_get(source: str, host: str, port: int, path: str = "/", headers: dict | None = None,
             timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """One request on a fresh connection from `source`; returns (status, headers, body)."""
    s = connect_from(source, host, port, timeout)
    try:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
        return parse_response(read_all(s))
    finally:
        s.close()


def http_exchange(source: str, host: str, port: int, path: str = "/", timeout: float = 5.0) -> tuple[bytes, bytes]:
    """One GET on a fresh connection; returns (the bytes sent, the bytes received), for
    byte counters that must count exactly what crossed the wire."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    s = connect_from(source, host, port, timeout)
    try:
        s.sendall(request)
        return request, read_all(s)
    finally:
        s.close()


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_response(raw: bytes) -> tuple[int, dict, bytes]:
    if not raw:
        return 0, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    if "chunked" in ",".join(headers.get("transfer-encoding", [])):
        body = _dechunk(body)
    return status, {k: ", ".join(v) for k, v in headers.items()} | {"set-cookie-list": headers.get("set-cookie", [])}, body


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return bytes(out)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
