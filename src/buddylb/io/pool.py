"""Server-side keep-alive connections for L7 VIPs, pooled per (address, port).

A `ServerConn` carries one request/response exchange at a time for the L7 client that
owns it, and goes back to the pool when the response ended cleanly and the server
allows reuse (`ResponseParser.must_close` false).  An idle pooled connection that
receives bytes or EOF is closed: a server speaking unasked is never trusted again.
Idle connections older than `IDLE_S` are closed so servers' own timeouts never race us.

`send-proxy` farms (SPEC §2.1): a connection that opened with a PROXY header speaks
for one client address, so it is pooled under (address, port, client address) and only
that client's requests reuse it (HAProxy makes such connections private to one client
connection; per address keeps keep-alive for a client's parallel connections, whose
header then names the port of the first).

Flow control: the owner pauses a connection's reading through `pause()` / `resume()`
(never on the transport directly), so the pool knows the state and never hands out a
connection whose reading is still paused by its previous owner.

Transport: io/tcp.py's (`Pool.dial`: `tcp.connect`, then `tcp.attach`), as for the
client side of plain VIPs and both sides of L4; not uvloop's.  Why: under L7 keep-alive
load `perf` put ~17% of the CPU in uvloop's UVStream write path and every server read went
through uvloop's per-read callback machinery; io.tcp writes and reads with one C
send()/recv() each.  Like asyncio's, its `connection_lost` is never called from inside
the call that caused it (close, abort, a failed write), so the exchange and the tunnel
see the same order of events as before.

Compiled (setup.py), ServerConn and Pool are extension types (pool.pxd): every L7 request
takes a connection, writes to it, reads its response and gives it back, and these steps
then run as C.  A field either gains goes into pool.pxd too.
"""
from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any, Callable, Protocol as TypingProtocol

from buddylb.io import tcp

IDLE_S = 15.0
MAX_IDLE_PER_TARGET = 64


class Owner(TypingProtocol):
    def server_data(self, data: bytes) -> None: ...
    def server_eof(self) -> None: ...
    def server_lost(self, exc: Exception | None) -> None: ...
    def server_write_paused(self) -> None: ...
    def server_write_resumed(self) -> None: ...


class ServerConn:  # an asyncio protocol (duck-typed): compiled, an extension type (pool.pxd)
    """One keep-alive connection to a server (not an asyncio.Protocol subclass: an
    extension type cannot derive from a Python class)."""

    __slots__ = ("pool", "target", "transport", "owner", "idle_since", "alive", "reused", "paused", "preface")

    def __init__(self, pool: "Pool", target: tuple, preface: bytes = b"") -> None:
        self.pool = pool
        self.target = target  # (address, port), or (address, port, client address) for send-proxy
        self.preface = preface  # the PROXY header this connection opens with (send-proxy), or b""
        self.transport: tcp.Transport | None = None
        self.owner: Owner | None = None
        self.idle_since = 0.0
        self.alive = True
        self.reused = False
        self.paused = False  # reading paused by the owner (its client's buffer is full)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # tcp.connect set TCP_NODELAY
        if self.preface:
            transport.write(self.preface)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.server_data(data)
        else:
            self.close()  # unsolicited bytes on an idle connection

    def eof_received(self) -> bool:
        if self.owner is not None:
            self.owner.server_eof()
            return True
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.pool.forget(self)
        if self.owner is not None:
            owner, self.owner = self.owner, None
            owner.server_lost(exc)
        # None: the connection is gone (`take`, `give_back` and the writes test it)
        self.transport = None

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.server_write_paused()

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.server_write_resumed()

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None:  # None once lost: dropped, as a closed transport's write drops it
            t.write(data)

    def write_eof(self) -> None:
        """Half-close towards the server (an upgraded connection's client sent EOF)."""
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def close(self) -> None:
        self.alive = False
        self.owner = None
        if self.transport is not None:
            self.transport.close()
        self.pool.forget(self)

    def abort(self) -> None:
        self.alive = False
        self.owner = None
        if self.transport is not None:
            self.transport.abort()
        self.pool.forget(self)


class Pool:
    __slots__ = ("idle", "reaper")

    def __init__(self) -> None:
        self.idle: dict[tuple, list[ServerConn]] = {}
        self.reaper: asyncio.TimerHandle | None = None

    def take(self, address: str, port: int, tag: str | None = None) -> ServerConn | None:
        """An idle connection to address:port (`tag`: one that opened for that client address)."""
        conns = self.idle.get((address, port) if tag is None else (address, port, tag))
        while conns:
            c = conns.pop()
            if c.alive and c.transport is not None and not c.transport.is_closing():
                c.reused = True
                return c
        return None

    def dial(self, address: str, port: int, answer: Callable[[Any, Any], None], tag: str | None = None,
             preface: bytes = b"") -> tcp.Transport:
        """Start a new connection to address:port (io.flow.Connector's `open_conn`, which
        bounds it by `timeout connect`): `answer(conn, None)` with the connected
        ServerConn (its preface, if any, already written), or `answer(None, exc)` with the
        OSError of a refused or failed connect; never from inside this call.  Returns the
        connecting tcp.Transport: its `abort()` cancels (no answer then).  `tag` and
        `preface`: a send-proxy connection, pooled for that client address (SPEC §2.1)."""
        target = (address, port) if tag is None else (address, port, tag)
        return tcp.connect(tcp.running_poller(), address, port, partial(self._made, target, preface, answer))

    def _made(self, target: tuple, preface: bytes, answer: Callable[[Any, Any], None], t: Any,
              exc: BaseException | None) -> None:
        if t is None:
            answer(None, exc)
            return
        conn = ServerConn(self, target, preface)
        tcp.attach(t, conn)
        answer(conn, None)

    def give_back(self, conn: ServerConn) -> None:
        conn.owner = None
        if not conn.alive or conn.transport is None or conn.transport.is_closing():
            return
        if conn.paused:
            conn.resume()  # an idle connection must notice the server's EOF or stray bytes
        conns = self.idle.get(conn.target)
        if conns is None:  # not setdefault: its default list would be made on every request
            conns = self.idle[conn.target] = []
        if len(conns) >= MAX_IDLE_PER_TARGET:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conns.append(conn)
        if self.reaper is None:
            self.reaper = asyncio.get_running_loop().call_later(IDLE_S, self._reap)

    def forget(self, conn: ServerConn) -> None:
        conns = self.idle.get(conn.target)
        if conns and conn in conns:
            conns.remove(conn)

    def _reap(self) -> None:
        self.reaper = None
        cutoff = time.monotonic() - IDLE_S
        for conns in self.idle.values():
            for c in [c for c in conns if c.idle_since < cutoff]:
                c.close()
        if any(self.idle.values()):
            self.reaper = asyncio.get_running_loop().call_later(IDLE_S, self._reap)

    def close_all(self) -> None:
        for conns in list(self.idle.values()):
            for c in list(conns):
                c.close()
        self.idle.clear()
