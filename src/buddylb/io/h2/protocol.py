"""The asyncio side of HTTP/2: the ALPN switch, the connection, one Port per stream.

`Alpn` is what a TLS-terminated L7 VIP accepts: once the handshake is done it hands
the transport to `H2Client` when the client chose `h2`, else to the HTTP/1.1
`L7Client` (the same `transport.set_protocol` hand-over as `io.gate.AclGate`).

`H2Client` carries out the actions of `session.Session` (the sans-IO machine): writes,
closes, the connection's timer (the preface and the idle keep-alive, on the shared
wheel) and the reload / stop GOAWAY (Balancer.h2_clients).  `StreamPort` is one
stream's `io.l7.port.Port`: it *is* an `L7Client` for everything that decides,
connects, pools, times and records (so a stream is served by the exact code of an
HTTP/1.1 request, not a fork of it) and routes what concerns the client connection to
the session instead of a transport.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from buddylb.io.h2.session import Session, Stream
from buddylb.io.l7.exchange import Exchange
from buddylb.io.l7.protocol import L7Client, TlsClient
from buddylb.io.record import FlowRecord
from buddylb.io.wheel import shared_wheel

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

class Alpn(asyncio.Protocol):
    """The protocol a TLS L7 VIP accepts; replaced by the real one once ALPN is known."""

    __slots__ = ("balancer", "vip_key", "origin")

    def __init__(self, balancer: "Balancer", vip_key: tuple[str, int], origin: Any = None) -> None:
        self.balancer = balancer
        self.vip_key = vip_key
        self.origin = origin  # what an accept-proxy header said (io.proxied); None: the real peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        ssl_object = transport.get_extra_info("ssl_object")
        chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        real: asyncio.Protocol
        if chosen == "h2":
            real = H2Client(self.balancer, self.vip_key, self.origin)
        else:
            real = TlsClient(self.balancer, self.vip_key, True, self.origin)  # reads through a buffer
        transport.set_protocol(real)
        real.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        return None  # never: the real protocol is in place before the first byte

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        return None


class H2Client(asyncio.Protocol):
    """One HTTP/2 client connection: the session's port and the streams' parent."""

    def __init__(self, balancer: "Balancer", vip_key: tuple[str, int], origin: Any = None) -> None:
        self.balancer = balancer
        self.vip_key = vip_key
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.session = Session(self)
        self.peer = ""
        self.peer_port = 0
        self.slot: int | None = None
        self.wheel = shared_wheel(balancer, self.loop)
        self.deadline = 0.0  # the connection's own timer: preface, then idle keep-alive
        self.closed = False
        self.out: list[bytes] = []  # written in this turn of the loop (`write`)
        self.corked = False

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        self.transport = transport  # type: ignore[assignment]
        b = self.balancer
        b.flows.add(self)
        b.h2_clients.add(self)
        if b.accept.limits:
            b.accept.opened(self.vip_key)
        peer = self.origin or transport.get_extra_info("peername") or ("0.0.0.0", 0)
        self.peer, self.peer_port = peer[0], peer[1]
        self._arm_idle(b.snapshot.timeouts["http-request"])  # the preface is due like a request head
        self.session.start()

    def data_received(self, data: bytes) -> None:
        self.session.data_received(data)

    def eof_received(self) -> bool:
        return False  # an h2 client that half-closes is gone: close (streams end as 499)

    def pause_writing(self) -> None:
        self.session.write_paused()

    def resume_writing(self) -> None:
        self.session.write_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        b = self.balancer
        b.flows.discard(self)
        b.h2_clients.discard(self)
        if b.accept.watch_close:
            b.accept.released(self.vip_key)
        self.wheel.disarm(self)
        self.session.lost()

    def abort(self) -> None:
        """fail-action purge / drain deadline: the whole connection and its streams."""
        self.transport.abort()

    def goaway(self) -> None:
        """A reload or a stop (Balancer.h2_clients): finish open streams, take no new one."""
        self.session.goaway()

    # -- the session's port ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Corked until the loop turns: the responses of many streams that arrive in one
        turn leave in one TLS write (one write per stream cost ~3x the CPU per request)."""
        if self.closed:
            return
        self.out.append(data)
        if not self.corked:
            self.corked = True
            self.loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        self.corked = False
        out = self.out
        if out and not self.closed:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            self.transport.write(data)

    def close(self) -> None:
        self._uncork()  # what is corked (a GOAWAY) goes first
        self.transport.close()

    def idle(self) -> None:
        self._arm_idle(self.balancer.snapshot.timeouts["keep-alive"])

    def _arm_idle(self, seconds: float) -> None:
        self.deadline = self.loop.time() + seconds
        self.wheel.arm(self, self.deadline)

    def fire(self) -> None:
        if self.closed or self.session.streams:
            return  # a stream is open: its exchange keeps its own timers
        now = self.loop.time()
        if now < self.deadline:
            self.wheel.arm(self, self.deadline)
            return
        self.session.goaway()  # idle (or no preface in time): a polite GOAWAY, then the close

    def open_exchange(self, st: Stream) -> Any:
        """A new stream: its Exchange, started like an accepted HTTP/1.1 connection."""
        port = StreamPort(self, st)
        st.ex = port.ex
        port.ex.start(self.peer, self.peer_port)
        return st.ex

    def close_exchange(self, st: Stream, ex: Any) -> None:
        """The stream is gone (reset, connection lost): its request ends now."""
        port = ex.port
        port.detach()
        ex.lost()

    def record_malformed(self, reason: str) -> None:
        rec = FlowRecord(self.peer, "h2", time.time())
        vip = self.balancer.snapshot.vips.get(self.vip_key)
        rec.vip, rec.status, rec.error = vip.name if vip else "", 400, f"malformed HTTP/2 request: {reason}"
        self.balancer.access_log(rec)


class StreamPort(L7Client):
    """One stream's Port: an L7Client (decide, connect, pool, timers, record) whose client
    connection is the h2 stream.  Never a protocol of its own (no transport)."""

    __slots__ = ("parent", "stream")

    def __init__(self, parent: H2Client, st: Stream) -> None:  # noqa: super().__init__ is not wanted
        b = parent.balancer
        self.parent = parent
        self.stream = st
        self.balancer = b
        self.vip_key = parent.vip_key
        self.tls = True
        self.loop = parent.loop
        self.now = parent.loop.time
        self.take = b.pool.take
        self.give_back = b.pool.give_back
        self.origin = parent.origin
        self.transport = parent.transport  # read only for addresses (send-proxy); writes go to the session
        self.slot = None
        self.wheel = parent.wheel
        self.tasks = set()
        self.closed = False
        self.ex = Exchange(self, b, parent.vip_key, True)

    def detach(self) -> None:
        """The stream no longer needs this port: no timer, no task."""
        if self.closed:
            return
        self.closed = True
        self.wheel.disarm(self)
        for task in self.tasks:
            task.cancel()

    # -- the client side of Port: the stream, through the session --------------------------------
    def write(self, data: bytes) -> None:  # type: ignore[override]
        if not self.closed:
            self.parent.session.stream_write(self.stream, data)

    def write_eof(self) -> None:
        """After an error response: the stream ends (no lingering close on a stream)."""
        self._end()

    def close(self) -> None:
        self._end()

    def _end(self) -> None:
        if self.closed:
            return
        self.detach()
        self.ex.lost()
        self.parent.session.stream_end(self.stream)

    def abort_transport(self) -> None:
        if self.closed:
            return
        self.detach()
        self.ex.lost()
        self.parent.session.stream_abort(self.stream)

    def pause_reading(self) -> None:  # type: ignore[override]
        self.parent.session.stream_pause(self.stream)

    def resume_reading(self) -> None:  # type: ignore[override]
        self.parent.session.stream_resume(self.stream)

    def record(self, rec: FlowRecord) -> None:  # type: ignore[override]
        rec.mode = "h2"  # the access log and metrics tell h2 requests apart
        self.balancer.access_log(rec)

    def abort(self) -> None:
        """fail-action purge of this stream's server: the stream is reset, the connection stays."""
        self.ex.abort()
