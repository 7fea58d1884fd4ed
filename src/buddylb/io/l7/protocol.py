"""The asyncio side of an L7 client connection: it carries out the exchange's actions.

Owns the transport, its place in the timer wheel (wheel.py) and the set of tasks of
this connection (every task it starts is kept there and cancelled when the connection
is lost, uvicorn's `ServerState.tasks`).  It decides nothing itself: `exchange.Exchange` does, and calls
back the `Port` methods below.  Tasks exist only for what must await: a shared-store
round trip or the rule-6 queue (`io.flow.settle`); a new server connection is a callback
(`io.flow.Connector` over `io.pool.Pool.dial`, on io/tcp.py), and a request with an idle
pooled connection and a local decision runs start to end inside `data_received` (the
fast path, no task).

Compiled (setup.py), L7Client is a cdef class whose fields are declared in protocol.pxd: a
new field goes there too.  `io.h2.protocol.StreamPort` derives from it in Python and
replaces some of its Port methods: inside this class, call Port methods through `self`
only as Python attributes (never cpdef), so those replacements hold.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from buddylb.core.decide import Decision, Flow
from buddylb.io import flow as flow_mod
from buddylb.io.l7.exchange import Exchange
from buddylb.io.proxied import Origin, preface
from buddylb.io.tally import counted_decide
from buddylb.io.wheel import running_wheel

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer


class L7Client:  # an asyncio protocol (duck-typed): compiled, an extension type (protocol.pxd)
    """One client connection of an L7 VIP; also the exchange's `Port`.

    Not an asyncio.Protocol subclass: an extension type cannot derive from a Python class,
    and its C fields and C-level method bodies save the interpreter's frames on every
    accept, open, timer arm and close (one object per connection)."""

    __slots__ = ("balancer", "vip_key", "tls", "loop", "now", "transport", "ex", "write",
                 "slot", "wheel", "tasks", "closed", "take", "origin", "give_back", "record", "pause_reading", "resume_reading", "data_received")

    def __init__(self, balancer: "Balancer", vip_key: tuple[str, int], tls_terminated: bool = False,
                 origin: Origin | None = None) -> None:
        self.balancer = balancer
        self.origin = origin  # what an accept-proxy header said (io.proxied); None: the real peer
        self.vip_key = vip_key
        self.tls = tls_terminated
        wheel = self.wheel = running_wheel(balancer)
        self.loop = wheel.loop
        # Port actions that are one call elsewhere, bound once (no frame of ours per request)
        self.now = self.loop.time
        self.take = balancer.pool.take
        self.give_back = balancer.pool.give_back
        self.record = balancer.access_log  # the access log with the metrics tap (installed before VIPs open)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ex = Exchange(self, balancer, vip_key, tls_terminated)
        # uvloop caches protocol.data_received before connection_made: bind it here
        self.data_received = self.ex.client_data  # type: ignore[method-assign]
        self.slot: int | None = None  # our bucket in the wheel, while armed
        self.tasks: set = set()  # tasks and Connectors: cancelled when the connection is lost
        self.closed = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = self.transport = transport  # type: ignore[assignment]
        self.write = t.write  # type: ignore[attr-defined]  # Port.write, bound once
        self.pause_reading = t.pause_reading  # type: ignore[attr-defined]
        self.resume_reading = t.resume_reading  # type: ignore[attr-defined]
        flow_mod.client_opened(self.balancer, self, self.vip_key)
        peer = self.origin or transport.get_extra_info("peername") or ("0.0.0.0", 0)
        self.ex.start(peer[0], peer[1])

    def eof_received(self) -> bool:
        return self.ex.client_eof()

    def pause_writing(self) -> None:
        self.ex.client_write_paused()

    def resume_writing(self) -> None:
        self.ex.client_write_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        flow_mod.client_closed(self.balancer, self, self.vip_key, self.wheel)
        for task in self.tasks:
            task.cancel()
        ex = self.ex
        ex.lost()
        # Cut the one reference cycle of a connection (we hold the machine, the machine its
        # port; uvloop's transport keeps our cached data_received, the machine's method):
        # without it every connection's ~20 objects waited for the cyclic GC, measured at
        # ~10 µs per connection under `Connection: close` load.  Nothing calls the machine
        # after this: the wheel, the tasks and the server connection let go of it above.
        ex.port = None

    def abort(self) -> None:
        """fail-action purge / drain deadline (called through Balancer.flows)."""
        self.ex.abort()

    # -- Port: decisions and server connections ------------------------------------------------
    def decide(self, flow: Flow) -> Decision | None:
        ex = self.ex
        b = self.balancer
        if not b.store.shared:  # the memory store: io.flow.decide_now's first case, one call less
            d = counted_decide(b, ex.vip, flow, ex.snap)  # Balancer.decide without its frame
            if not d.queue:
                return d
            self._spawn(self._settle(d))
            return None
        d, final = flow_mod.decide_now(b, ex.vip, flow, ex.snap)
        if final:
            return d
        self._spawn(self._settle(d))
        return None

    async def _settle(self, made: Decision | None) -> None:
        ex = self.ex
        head, n = ex.head, ex.requests
        d = await flow_mod.settle(self.balancer, ex.vip, ex.flow, ex.snap, made)
        # the client left, or that request ended meanwhile (the count tells requests apart:
        # requests with the same bytes share one remembered head object)
        if self.closed or ex.head is not head or ex.requests != n:
            flow_mod.Lease(self.balancer, d).release()
            return
        ex.decided(d)

    def connect(self, lease: flow_mod.Lease) -> None:
        ex = self.ex
        open_conn: Any = self.balancer.pool.dial
        farm = lease.decision.farm
        if farm is not None and farm.send_proxy:  # SPEC §2.1: a connection private to this client address
            open_conn = partial(open_conn, tag=ex.peer, preface=preface(farm.send_proxy, self.origin, self.transport,
                                                                         ex.vip))
        flow_mod.Connector(self.balancer, lease, ex.flow, ex.snap.timeouts["connect"], open_conn,
                           self._opened, self.tasks)

    def _opened(self, lease: flow_mod.Lease, conn: Any) -> None:
        """The Connector's answer: the connected ServerConn, or None once both tries failed."""
        ex = self.ex
        if conn is None:
            if not self.closed and ex.lease is lease:
                ex.connect_failed()
            return
        if self.closed or ex.lease is not lease:
            self.balancer.pool.give_back(conn)
            return
        ex.connected(conn)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- Port: the client transport, the timer, the record ----------------------------------------
    def write_eof(self) -> None:
        if self.transport.can_write_eof():
            self.transport.write_eof()

    def close(self) -> None:
        self.transport.close()

    def abort_transport(self) -> None:
        self.transport.abort()

    def arm(self, deadline: float) -> None:
        """Make sure `tick` runs at or soon after `deadline`: a later deadline (every
        request moves it later) costs nothing; the early tick looks again (wheel.py)."""
        self.wheel.arm(self, deadline)

    def tunnel(self, relay: Any) -> None:
        """After a 101 the connection is a byte relay (tunnel.py): the client's events go to
        it.  uvloop caches `data_received` when the protocol is set, so set it again."""
        self.ex = relay
        self.data_received = relay.client_data  # type: ignore[method-assign]
        self.transport.set_protocol(self)

    def fire(self) -> None:
        if not self.closed:
            self.ex.tick(self.loop.time())



# The read buffer of every TLS client (TlsClient): uvloop decrypts into it and
# `buffer_updated` copies the bytes out before returning, so one buffer serves all.
# 64 KiB: four full TLS records; a fuller read makes uvloop read again at once.
_TLS_READ = memoryview(bytearray(65536))


class TlsClient(L7Client):
    """The HTTP/1.1 client of a TLS-terminated VIP (io.h2.protocol.Alpn hands it over).

    Why not L7Client as it is: given a plain protocol, uvloop's SSL transport reads with
    `SSLObject.read(256 KiB)` until SSLWantRead, each call a fresh 256 KiB bytes object
    shrunk to what came: above glibc's mmap threshold (until something else happens to
    raise it) that was an mmap, an mremap and a munmap, and a page fault, per request,
    seen with strace -c under wrk TLS keep-alive load.  With `get_buffer`/`buffer_updated`
    uvloop decrypts into our buffer instead (its `_do_read__buffered`): one small bytes
    copy per read, no allocation of the 256 KiB.  The plain VIPs keep `data_received`."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return _TLS_READ

    def buffer_updated(self, nbytes: int) -> None:
        # `data_received` is the exchange's (or, after a 101, the tunnel's) client_data
        self.data_received(_TLS_READ[:nbytes].tobytes())
