"""The L4 data path: one decision per TCP connection, then a byte relay.

Protocol-based relay (uvloop): `data_received` -> `peer.transport.write`, with flow control
by pause/resume_reading when the peer's write buffer passes its high-water mark; never a
StreamReader loop in the hot path.  Half-close is passed through (EOF one way keeps the
other way open).  Connect timeout, one retry on another rserver of the farm after a
refused or timed-out connect (SPEC §5), inactivity timeouts on both sides.

On a TLS passthrough VIP with ssl-session stickiness the client's first bytes are held
until the ClientHello is parsed (its session id is the sticky key), and the server's
first bytes are read for the ServerHello session id, which is learned (SPEC §5).

Inactivity (SPEC §5): one timer per connection, which compares byte counts (the relay
reads no clock per read).  While we wait for a ClientHello the client gets `timeout
client`; once relaying, a connection with no bytes either way for max(`timeout client`,
`timeout server`) is aborted.  Connecting and queueing are
bounded by `timeout connect` and `timeout queue`, not by inactivity.

Over 400 lines: the two protocols of a connection are one compiled module (l4.pxd), so
the relay's per-read and per-connection steps call each other in C.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from buddylb.core.decide import learn
from buddylb.core.decision import Decision, Flow  # the types l4.pxd cimports (core.decide re-exports them)
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.io import flow as flow_mod
from buddylb.io import tcp
from buddylb.io.proxied import Origin, preface
from buddylb.io.record import FlowRecord
from buddylb.io.wheel import shared_wheel

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

IDLE_CHECKS = 4  # inactivity is checked this many times per idle limit
HELLO_LIMIT = 16 * 1024  # a ClientHello larger than this is relayed without a session key
PENDING_LIMIT = 64 * 1024  # client bytes held while connecting before reading pauses


def peer_address(transport: asyncio.BaseTransport) -> tuple[str, int]:
    peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
    return peer[0], peer[1]


class ServerSide:  # an asyncio protocol (duck-typed): compiled, an extension type (l4.pxd)
    """The connection to the rserver; everything it receives goes to the client."""

    def __init__(self, client: "L4Client") -> None:
        self.client = client
        self.to_client = client.transport.write  # bound once: one call per relayed read
        self.transport: asyncio.Transport | None = None
        self.hello: bytearray | None = bytearray() if client.learn_session else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        c = self.client
        farm = c.lease.decision.farm if c.lease is not None else None
        if farm is not None and farm.send_proxy and c.vip is not None:  # SPEC §2.1 send-proxy: the header first
            transport.write(preface(farm.send_proxy, c.origin, c.transport, c.vip))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        c = self.client
        c.bytes_out += len(data)  # also the inactivity check's evidence (no clock read per read)
        if self.hello is not None:
            self._learn(data)
        self.to_client(data)

    def _learn(self, data: bytes) -> None:
        from buddylb.tls.hello import parse_server_hello

        assert self.hello is not None
        self.hello += data
        try:
            info = parse_server_hello(bytes(self.hello))
        except ValueError:
            self.hello = None
            return
        if info is None:
            if len(self.hello) > HELLO_LIMIT:
                self.hello = None
            return
        self.hello = None
        c = self.client
        if info.session_id and not info.tls13 and c.decision is not None:
            learn(c.decision, bytes(info.session_id), c.balancer.clock())

    def eof_received(self) -> bool:
        self.client.peer_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # closed: nothing to write, pause or close any more
        self.client.server_lost()

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


class L4Client:  # an asyncio protocol (duck-typed): compiled, an extension type (l4.pxd)
    """The client side of one L4 VIP connection (plain, or TLS-terminated by the transport).

    Not an asyncio.Protocol subclass: an extension type cannot derive from a Python class,
    and its C fields save a lookup per attribute (one object per connection, thousands a
    second under a new-connection-per-request load)."""

    def __init__(self, balancer: "Balancer", vip_key: tuple[str, int], tls_terminated: bool = False,
                 origin: Origin | None = None) -> None:
        self.balancer = balancer
        self.origin = origin  # what an accept-proxy header said (io.proxied); None: the real peer
        self.vip_key = vip_key
        wheel = balancer.wheel  # not get_running_loop() per connection: it costs a getpid() syscall
        if wheel is None or wheel.loop.is_closed():
            wheel = shared_wheel(balancer, asyncio.get_running_loop())
        self.wheel = wheel
        self.loop = wheel.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: ServerSide | None = None
        self.decision: Decision | None = None
        self.lease: flow_mod.Lease | None = None
        self.tasks: set | None = None  # tasks (store, queue): cancelled when the connection is lost
        self.connector: flow_mod.Connector | None = None  # the server connect under way: cancelled likewise
        self.snap: Snapshot | None = None
        self.vip: Vip | None = None
        self.vip_name = ""  # Vip.name, which formats it on each call
        self.pending: list[bytes] | None = []  # client bytes until the server connection is up
        self.pending_bytes = 0
        self.held_back = False  # reading paused because `pending` grew past PENDING_LIMIT
        self.hello: bytearray | None = None
        self.learn_session = False
        self.flow: Flow | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.time()
        self.quiet_since = 0.0  # loop time since which the byte counts have not moved
        self.seen = 0  # bytes_in + bytes_out at the last inactivity check
        self.to_server = None  # the server transport's write, once connected
        self.slot: int | None = None  # our bucket in the timer wheel, while armed
        self.idle = 0.0  # the inactivity limit in force (`_idle_limit`), set when the timer is armed
        self.closed = False
        self.client_eof = False
        self.server_eof = False
        self.status = "open"
        self.tls = tls_terminated

    # -- client side ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        flow_mod.client_opened(self.balancer, self, self.vip_key)
        snap = self.snap = self.balancer.snapshot
        vip = self.vip = snap.vips.get(self.vip_key)
        if vip is None or not vip.inservice:
            self.status = "vip_outofservice"
            transport.close()
            return
        src = peer_address(transport)[0] if self.origin is None else self.origin[0]
        self.flow = Flow(src, vip.address)
        facts = _vip_facts(self.balancer, snap, vip, self.vip_key)
        self.vip_name = facts[2]
        if not self.tls and facts[3]:
            self.hello = bytearray()  # wait for the ClientHello before deciding
            self.quiet_since = self.loop.time()
            self._arm_timer()  # ... but not for ever
            return
        self._start()

    def _start(self) -> None:
        """Decide (io.flow): synchronously when possible, else in one kept task."""
        assert self.vip is not None and self.flow is not None and self.snap is not None
        d, final = flow_mod.decide_now(self.balancer, self.vip, self.flow, self.snap)
        if final:
            assert d is not None
            self._decided(d)
            if self.lease is not None:
                self._connect()
            return
        self._spawn(self._settle(d))

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        if self.tasks is None:
            self.tasks = set()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, made: Decision | None) -> None:
        assert self.vip is not None and self.flow is not None and self.snap is not None
        d = await flow_mod.settle(self.balancer, self.vip, self.flow, self.snap, made)
        if self.closed:  # the client left while the store answered or the queue waited
            flow_mod.Lease(self.balancer, d).release()
            return
        self._decided(d)
        if self.lease is not None:
            self._connect()

    def _decided(self, d: Decision) -> None:
        self.decision = d
        if d.member is None:
            self.status = "no_server"
            self.transport.close()
            return
        self.lease = flow_mod.Lease(self.balancer, d)
        self.learn_session = d.learn_session

    def _connect(self) -> None:
        assert self.snap is not None and self.flow is not None and self.lease is not None
        self.connector = flow_mod.Connector(self.balancer, self.lease, self.flow, self.snap.timeouts["connect"],
                                            self._open, self._opened)

    def _open(self, address: str, port: int, answer: Any) -> tcp.Transport:
        """The server connection on io/tcp.py, whatever the client's transport (the Connector's `open_conn`)."""
        return tcp.connect(tcp.shared_poller(self.loop), address, port, answer)

    def _opened(self, lease: flow_mod.Lease, made: Any) -> None:
        """The Connector's answer: the connected tcp.Transport, or None once both tries failed."""
        self.connector = None  # done (it referred back to us: no cycle left)
        if made is None:
            if not self.closed:
                self.status = "connect_failed"
                self.transport.close()
            return
        assert self.lease is not None
        self.decision = self.lease.decision
        self.learn_session = self.decision.learn_session
        if self.closed:  # not expected: the client's connection_lost cancelled the Connector
            made.close()
            return
        proto = ServerSide(self)
        tcp.attach(made, proto)
        self._connected(proto)

    def abort(self) -> None:
        """Close both sides at once (fail-action purge, drain deadline)."""
        self.status = "purged"
        self.transport.abort()
        if self.server is not None and self.server.transport is not None:
            self.server.transport.abort()

    def _connected(self, proto: ServerSide) -> None:
        self.server = proto
        if self.lease is not None:
            self.lease.track(self)
        assert proto.transport is not None  # uvloop sets TCP_NODELAY on every TCP transport
        if self.pending:
            proto.transport.write(b"".join(self.pending))
        self.pending = None
        if self.client_eof and proto.transport.can_write_eof():
            proto.transport.write_eof()
        self.to_server = proto.transport.write
        if self.held_back:
            self.held_back = False
            self.transport.resume_reading()
        self.quiet_since = self.loop.time()  # connecting took time; inactivity starts now
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)  # also the inactivity check's evidence (no clock read per read)
        to_server = self.to_server
        if to_server is not None:
            to_server(data)
            return
        if self.pending is not None:
            self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > PENDING_LIMIT and not self.held_back:
                self.held_back = True  # deciding or connecting takes long: stop reading
                self.transport.pause_reading()
        if self.hello is not None:
            self._client_hello(data)

    def _client_hello(self, data: bytes) -> None:
        from buddylb.tls.hello import parse_client_hello

        assert self.hello is not None and self.flow is not None
        self.hello += data
        try:
            info = parse_client_hello(bytes(self.hello))
        except ValueError:
            info, self.hello = None, None  # not TLS: relay without a session key
        else:
            if info is None and len(self.hello) <= HELLO_LIMIT:
                return
            self.hello = None
        if info is not None and info.session_id:
            self.flow.ssl_session = bytes(info.session_id)
        self._start()

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.server_eof:  # both directions ended: close both (no shutdown first: a syscall for nothing)
            self.transport.close()
            return not self.tls
        server = self.server
        if server is not None and server.transport is not None and server.transport.can_write_eof():
            server.transport.write_eof()
        return not self.tls  # a TLS transport cannot stay half-open

    def peer_eof(self) -> None:
        self.server_eof = True
        if self.client_eof or not self.transport.can_write_eof():
            self.transport.close()  # flushes what the server sent; TLS cannot half-close
        else:
            self.transport.write_eof()

    def pause_writing(self) -> None:
        if self.server is not None and self.server.transport is not None:
            self.server.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.server is not None and self.server.transport is not None:
            self.server.transport.resume_reading()

    def server_lost(self) -> None:
        if self.closed:  # both sides are gone: drop the ServerSide (its `client` would
            self.server = None  # keep a cycle, and ~12 objects, for the cyclic GC)
        else:
            self.transport.close()  # flushes what the server sent, then closes

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        flow_mod.client_closed(self.balancer, self, self.vip_key, self.wheel)
        server = self.server
        if server is not None and server.transport is not None:
            server.transport.close()  # its connection_lost (server_lost) drops it
        elif server is not None:
            self.server = None  # lost already: no cycle left for the cyclic GC
        if self.status == "open":
            self.status = "closed"
        self._finish()

    def _finish(self) -> None:
        d = self.decision
        if self.lease is not None:
            self.lease.release()
        if self.connector is not None:
            self.connector.cancel()
            self.connector = None
        if self.tasks:
            for task in self.tasks:
                task.cancel()
        rec = FlowRecord(self.flow.source if self.flow else "", "tls" if self.tls else "l4", self.started)
        rec.vip = self.vip_name
        if d is not None:
            rec.decision(d)
        elif self.status == "no_server":
            rec.outcome = "no_server"
        rec.status, rec.bytes_in, rec.bytes_out = self.status, self.bytes_in, self.bytes_out
        rec.end(time.time())
        self.balancer.access_log(rec)
        self.decision = None

    # -- inactivity --------------------------------------------------------------------
    def _idle_limit(self) -> float:
        assert self.snap is not None
        t = self.snap.timeouts
        return t["client"] if self.server is None else max(t["client"], t["server"])

    def _arm_timer(self) -> None:
        """(Re)start the inactivity check: the limit is fixed until the next call (it
        changes only when the server side connects).  An earlier bucket is kept: its early
        fire looks again and re-arms (wheel.py)."""
        idle = self.idle = self._idle_limit()
        self.wheel.arm(self, self.quiet_since + idle / IDLE_CHECKS)

    def fire(self) -> None:  # the wheel's callback
        self._check_idle()

    def _check_idle(self) -> None:
        """Inactivity without a clock read per read: every limit/IDLE_CHECKS the byte
        counts are compared with the last check; unmoved for the whole limit -> abort
        (so the cut comes between the limit and limit * (1 + 1/IDLE_CHECKS) after the
        last byte)."""
        if self.closed:
            return
        now = self.loop.time()
        limit = self.idle
        if self.server is None and self.hello is None:
            # connecting or queued: `timeout connect` / `timeout queue` apply; `_connected` re-arms
            self.wheel.arm(self, now + limit)
            return
        total = self.bytes_in + self.bytes_out
        if total != self.seen:
            self.seen, self.quiet_since = total, now
        elif now - self.quiet_since >= limit:
            self.status = "idle_timeout"
            self.transport.abort()
            if self.server is not None and self.server.transport is not None:
                self.server.transport.abort()
            return
        self.wheel.arm(self, min(now + limit / IDLE_CHECKS, self.quiet_since + limit))


def _vip_facts(balancer: "Balancer", snap: Snapshot, vip: Vip, key: tuple[str, int]) -> tuple:
    """(generation, vip, its name, keyed by the TLS session id: wait for the ClientHello?).
    Asked per connection, computed once per VIP object and snapshot (a reload brings new
    ones): Vip.name formats a string and the session question walks the policy."""
    facts = balancer.session_vips.get(key)
    if facts is None or facts[0] != snap.generation or facts[1] is not vip:
        if len(balancer.session_vips) > 4096:
            balancer.session_vips.clear()
        facts = balancer.session_vips[key] = (snap.generation, vip, vip.name, _session_keyed(snap, vip))
    return facts


def _session_keyed(snap: Snapshot, vip: Vip) -> bool:
    ctx = snap.contexts[vip.context]
    for cls in vip.policy.classes:
        sg = ctx.stickies.get(cls.sticky) if cls.sticky else None
        if sg is not None and sg.scope.kind == "ssl-session":
            return True
    return False
