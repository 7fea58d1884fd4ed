"""A fault-injecting HTTP backend for the timeout, fault and reload tests.

It runs on its own asyncio loop in a background thread (the balancer under test is a
separate process) and misbehaves on request, chosen by the request path:

    /hang                    read the request, never answer
    /hold/S                  answer after S seconds (holds a connection-limit slot)
    /truncate/TOTAL/SENT     announce Content-Length TOTAL, send SENT bytes, then RST
    /truncate-fin/TOTAL/SENT the same, then a FIN instead of a reset
    /die                     read the whole request (head and body), then RST, no answer
    /big/N                   an N-byte body (slow-read tests)
    anything else            200, the backend's name as the body

`mode` switches the whole backend: "ok" (as above) or "down" (every request gets
503). Every connection and request is recorded with its monotonic time, so tests can
say what reached the backend and when. All of it is for loopback tests only.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from tests.support.backends import split_request, target
from tests.support.net import http_get


@dataclass
class Seen:
    at: float  # time.monotonic() when the request (head and body) was complete
    conn: int  # the connection's number: its index in Faulty.connections
    mode: str  # the backend's mode when it answered
    line: bytes
    headers: dict
    body: bytes


@dataclass
class Faulty:
    name: str
    host: str
    port: int
    mode: str = "ok"
    connections: list = field(default_factory=list)  # time.monotonic() of each accept
    closed: dict = field(default_factory=dict)  # connection number -> time.monotonic() of its end
    requests: list = field(default_factory=list)  # Seen
    server: asyncio.AbstractServer | None = None

    def paths(self) -> list[bytes]:
        return [r.line.split(b" ")[1] for r in self.requests]

    def first(self, prefix: bytes) -> Seen | None:
        """The first request whose request line starts with `prefix`."""
        return next((r for r in list(self.requests) if r.line.startswith(prefix)), None)


def _rst(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.abort()


class _Proto(asyncio.Protocol):
    def __init__(self, b: Faulty) -> None:
        self.b = b
        self.buf = b""
        self.t: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, t) -> None:
        self.t = t
        self.n = len(self.b.connections)
        self.b.connections.append(time.monotonic())

    def connection_lost(self, exc) -> None:
        self.b.closed[self.n] = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy and (got := split_request(self.buf)) is not None:
            line, hdrs, rest = got
            n = int(hdrs.get(b"content-length", b"0") or 0)
            if len(rest) < n:
                return
            body, self.buf = rest[:n], rest[n:]
            self.b.requests.append(Seen(time.monotonic(), self.n, self.b.mode, line, hdrs, body))
            self._answer(target(line), hdrs)

    def _send(self, payload: bytes, close: bool = False) -> None:
        assert self.t is not None
        self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(payload)).encode()
                     + b"\r\nX-Server: " + self.b.name.encode() + b"\r\nContent-Type: text/plain\r\n\r\n"
                     + payload)
        if close:
            self.t.close()

    def _answer(self, path: bytes, hdrs: dict) -> None:
        t = self.t
        assert t is not None
        loop = asyncio.get_running_loop()
        close = hdrs.get(b"connection", b"").lower() == b"close"
        if self.b.mode == "down":
            t.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown")
            t.close()
            return
        words = path.strip(b"/").split(b"/")
        if words[0] == b"hang":
            self.busy = True
        elif words[0] == b"hold":
            self.busy = True

            def later() -> None:
                self.busy = False
                if not t.is_closing():
                    self._send(self.b.name.encode(), close)

            loop.call_later(float(words[1]), later)
        elif words[0] in (b"truncate", b"truncate-fin"):
            self.busy = True
            total, sent = int(words[1]), int(words[2])
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(total).encode()
                    + b"\r\nContent-Type: text/plain\r\n\r\n" + b"y" * sent)
            loop.call_later(0.1, (t.close if words[0] == b"truncate-fin" else lambda: _rst(t)))
        elif words[0] == b"die":
            self.busy = True
            _rst(t)
        elif words[0] == b"big":
            self._send(b"x" * int(words[1]), close)
        else:
            self._send(self.b.name.encode(), close)


class FaultyBackends:
    """`with FaultyBackends() as fb: b = fb.start("lnx1", "127.0.1.11", port)`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.backends: list[Faulty] = []

    def __enter__(self) -> "FaultyBackends":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, coro_fn, timeout: float = 5.0):
        async def go():
            return await coro_fn()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout)

    def start(self, name: str, host: str, port: int) -> Faulty:
        b = Faulty(name, host, port)
        self.backends.append(b)
        self.listen(b)
        return b

    def listen(self, b: Faulty) -> None:
        async def go():
            b.server = await self.loop.create_server(lambda: _Proto(b), b.host, b.port, reuse_address=True)

        self._call(go)

    def unlisten(self, b: Faulty) -> None:
        """Close the listener (new connections are refused); open connections stay."""
        async def go():
            if b.server is not None:
                b.server.close()
                b.server = None

        self._call(go)

    def close(self) -> None:
        async def go():
            for b in self.backends:
                if b.server is not None:
                    b.server.close()
                    b.server = None

        try:
            self._call(go)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


def close_wait(port: int) -> int:
    """Sockets on this host in CLOSE_WAIT towards `port`: the peer closed, the owner has
    not (a leaked connection; Linux /proc/net/tcp, state 08)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "08" and int(fields[2].split(":")[1], 16) == port:
                count += 1
    return count


@contextlib.contextmanager
def blackhole(host: str) -> Iterator[int]:
    """A port on `host` where a connect hangs: a listener with backlog 0 that never
    accepts, its accept queue filled, so the kernel drops every further SYN (Linux,
    `tcp_abort_on_overflow` 0, the default). Deterministic on loopback."""
    lst = socket.socket()
    fillers: list[socket.socket] = []
    try:
        lst.bind((host, 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        for _ in range(2):
            s = socket.socket()
            fillers.append(s)
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
        time.sleep(0.1)
        yield port
    finally:
        for s in fillers:
            s.close()
        lst.close()


class Steady:
    """Well-behaved clients alongside a fault: one request per fresh connection, in a
    thread, bounded by `max_requests` and `max_s`; every non-200 or error is recorded."""

    def __init__(self, source: str, host: str, port: int, path: str = "/", max_requests: int = 2000,
                 max_s: float = 30.0, pause_s: float = 0.02) -> None:
        self.args = (source, host, port, path)
        self.max_requests, self.max_s, self.pause_s = max_requests, max_s, pause_s
        self.ok = 0
        self.failures: list = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        source, host, port, path = self.args
        deadline = time.monotonic() + self.max_s
        for _ in range(self.max_requests):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return
            try:
                status, _, _ = http_get(source, host, port, path, timeout=5)
            except OSError as exc:
                self.failures.append(repr(exc))
            else:
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(status)
            time.sleep(self.pause_s)

    def __enter__(self) -> "Steady":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(10)
