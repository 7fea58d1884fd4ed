"""The PROXY protocol on the data path: the accept-proxy gate and the send-proxy preface.

`ProxyGate` (SPEC §2.1 `loadbalance vip accept-proxy CIDR`) stands at the accept
boundary of a VIP that lists accept-proxy networks, like io/gate.py's AclGate (which,
when an access-group applies, runs first and sees the real peer, as HAProxy's
`tcp-request connection` rules do):
- a peer inside a listed network must open with a v1 or v2 header (buddylb.proxyproto)
  within `timeout http-request` (L7 VIPs) or `timeout client` (L4 VIPs); nothing is
  decided or connected before it is complete (proxy-protocol.txt §2: "MUST NOT start
  processing the connection before it receives a complete and valid PROXY protocol
  header").  Then the relay (io/l4.py, io/l7/) is made with the header's addresses as the
  connection's `origin` (None for LOCAL / UNKNOWN / unsupported families: the real
  peer), handed the transport with `set_protocol`, and fed the bytes after the header.
- any other peer connects as usual at once, but its first bytes are looked at: a peer
  that is not trusted and sends a header is trying to name another client, and is
  refused.  The gate forwards the relay's events until the first bytes tell.
A malformed, late, truncated or untrusted header aborts the connection, counted per VIP
and reason in `buddylb_proxy_refused_total` and logged rate-limited (io.lograte).

On a VIP that terminates TLS the header comes in clear text before the ClientHello (as
HAProxy's `bind ... ssl accept-proxy`), and the TLS layer cannot be handed bytes read
past it.  So `TlsAcceptor` takes the place of that VIP's asyncio Server: it accepts the
socket itself, and a listed peer's header is read with MSG_PEEK then recv of exactly
the header's bytes (v1 up to its CRLF, v2 16 + length), never a byte of the TLS records
behind it, within the same timeout; then `connect_accepted_socket` runs the handshake
and the protocol the ListenerSet made at accept (the ProxyGate, behind an AclGate when
one applies) is told the header as the connection's first bytes, so the origin, the
stickiness key, X-Forwarded-For and the access log come out exactly as on a plain VIP.
An unlisted peer goes straight to the handshake (a header from it fails the handshake).

Both ways of waiting for a header (the ProxyGate on a transport, the TLS VIP's reader on
the raw socket) are one `HeaderWait`: one deadline, one parse, one count of refusals.

`preface` is the header a `send-proxy` farm's server connection opens with: the client
(the origin's source, else the real peer) and the destination (the origin's, else the
VIP), so a chain of proxies passes on what it was told (proxy-protocol.txt §3).

It parses nothing itself and decides nothing about servers.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import struct
from typing import TYPE_CHECKING, Any, Callable

from buddylb import proxyproto
from buddylb.core.snapshot import Vip
from buddylb.io.lograte import RATE
from buddylb.io.wheel import shared_wheel

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.proxy")
Origin = tuple[str, int, str, int]  # (client address, client port, destination address, destination port)


def preface(version: int, origin: Origin | None, transport: asyncio.BaseTransport, vip: Vip) -> bytes:
    """The PROXY header (v1 or v2) that opens a server connection for this client."""
    if origin is None:
        peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        origin = (peer[0], peer[1], vip.address, vip.port)
    return proxyproto.build(version, *origin)


def is_listed(vip: Vip, peer: tuple) -> bool:
    """Is `peer` inside the VIP's accept-proxy networks (so it must send a header)?"""
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    return any(address in net for net in vip.accept_proxy)


def header_limit(balancer: "Balancer", vip: Vip) -> float:
    """How long a listed peer has for its header: `timeout http-request` (L7) or `client` (L4)."""
    return balancer.snapshot.timeouts["http-request" if vip.policy.http else "client"]


def note_refused(balancer: "Balancer", vip: Vip, peer: tuple, kind: str, reason: str) -> None:
    """Count and log (rate-limited) a connection closed for its PROXY header."""
    key = (vip.context, vip.name, kind)
    counts = balancer.proxy_refused
    counts[key] = counts.get(key, 0) + 1
    RATE.note(f"proxy_{kind}", f"VIP {vip.name}: connection from {peer[0]} closed: {reason}",
              logging.WARNING, f"connections closed for their PROXY header ({kind})")


class HeaderWait:
    """A peer's wait for its PROXY header, the same on a plain VIP (ProxyGate, fed by its
    transport) and a TLS VIP (_HeaderReader, reading the raw socket before the handshake):
    the deadline in the timer wheel, the parse that refuses a malformed header, the
    refusal (counted, logged) whatever its reason.  Each subclass resets its own kind of
    connection in `_abort()`: a transport, or a socket no transport has yet."""

    __slots__ = ("balancer", "vip", "peer", "buf", "slot", "wheel", "done")

    def __init__(self, balancer: "Balancer", vip: Vip, peer: tuple) -> None:
        self.balancer = balancer
        self.vip = vip
        self.peer = peer
        self.buf = bytearray()  # the header's bytes so far
        self.slot: int | None = None  # our bucket in the timer wheel while we wait
        self.wheel: Any = None
        self.done = False  # the header came (handed over) or the connection was refused

    def _wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the clock: the whole header must be in within `header_limit`."""
        self.wheel = shared_wheel(self.balancer, loop)
        self.wheel.arm(self, loop.time() + header_limit(self.balancer, self.vip))

    def _settle(self) -> None:
        """The wait is over (header complete, refused or the connection gone): stop the clock."""
        self.done = True
        if self.wheel is not None:
            self.wheel.disarm(self)

    def _parse(self, data: bytes | bytearray) -> proxyproto.ProxyHeader | None:
        """The header if `data` holds all of it; None while incomplete, or refused as
        malformed (then `done` is set)."""
        try:
            return proxyproto.parse(data)
        except proxyproto.BadProxyHeader as exc:
            self._refuse("malformed", exc.reason)
            return None

    def _peer_closed(self) -> bool:
        """The peer closed before the header was complete: proxy-protocol.txt §2.2 rejects
        a partial header (True: refused); a peer that sent nothing (a connect check) is
        not counted, and the caller closes the connection as it would any."""
        if self.buf:
            self._refuse("truncated", "the peer closed within the PROXY header")
            return True
        self._settle()
        return False

    def fire(self) -> None:  # the wheel: the header did not arrive in time
        if not self.done:
            self._refuse("timeout", "no complete PROXY header in time")

    def _refuse(self, kind: str, reason: str) -> None:
        self._settle()
        note_refused(self.balancer, self.vip, self.peer, kind, reason)
        self._abort()


class ProxyGate(HeaderWait, asyncio.Protocol):
    """The protocol of a connection to an accept-proxy VIP until the relay takes over."""

    __slots__ = ("make", "transport", "listed", "real")

    def __init__(self, balancer: "Balancer", vip: Vip, make: Callable[[Origin | None], asyncio.Protocol]) -> None:
        super().__init__(balancer, vip, ("", 0))
        self.make = make  # the relay, given the origin the header named (None: the real peer)
        self.transport: Any = None
        self.listed = False
        self.real: asyncio.Protocol | None = None  # an unlisted peer's relay, while we watch its first bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        self.listed = is_listed(self.vip, self.peer)
        if self.listed:
            self._wait(asyncio.get_running_loop())
            return
        real = self.real = self.make(None)
        real.connection_made(transport)  # serve at once; we keep the events until the first bytes tell

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        if not self.listed:
            self._watch()
            return
        header = self._parse(self.buf)
        if header is None:
            return
        self._settle()
        origin = None if header.local else (*header.source, *header.destination)  # type: ignore[misc]
        rest = bytes(self.buf[header.length:])
        self.buf = bytearray()
        real = self.make(origin)
        self.transport.set_protocol(real)
        real.connection_made(self.transport)
        if rest and not self.transport.is_closing():
            real.data_received(rest)

    def _watch(self) -> None:
        """An unlisted peer: its first bytes must not be a PROXY header."""
        verdict = proxyproto.sniff(self.buf)
        if verdict is None:
            return
        if verdict:
            self._refuse("untrusted", "a PROXY header from a peer outside accept-proxy")
            return
        self._hand_over()

    def _hand_over(self) -> None:
        self._settle()
        real, data = self.real, bytes(self.buf)
        self.buf = bytearray()
        assert real is not None
        self.transport.set_protocol(real)
        if data:
            real.data_received(data)

    def _abort(self) -> None:
        self.transport.abort()

    def eof_received(self) -> bool | None:
        if self.done:
            return False
        if self.real is not None:  # an unlisted peer half-closed before its bytes told: they are data
            self._hand_over()
            return self.real.eof_received()
        self._peer_closed()
        return False  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle()
        if self.real is not None:
            self.real.connection_lost(exc)  # the unlisted peer's relay gives its lease back

    def pause_writing(self) -> None:
        if self.real is not None:
            self.real.pause_writing()

    def resume_writing(self) -> None:
        if self.real is not None:
            self.real.resume_writing()


ACCEPT_BATCH = 64  # sockets accepted per readiness of a TlsAcceptor's listener, as asyncio's backlog loop


class TlsAcceptor:
    """The accept loop of a TLS VIP with accept-proxy, in the place of its asyncio Server
    (the ListenerSet only ever calls `close`).  `admit()` is the ListenerSet's budget
    check and protocol factory at accept: None when the client is over maxconn."""

    def __init__(self, balancer: "Balancer", key: tuple[str, int], sock: socket.socket, ctx: ssl.SSLContext,
                 handshake_s: float | None, admit: Callable[[], asyncio.Protocol | None]) -> None:
        self.balancer = balancer
        self.key = key
        self.sock = sock
        self.ctx = ctx
        self.handshake_s = handshake_s
        self.admit = admit
        self.tasks: set[asyncio.Task] = set()
        self.loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (the connections accepted go on), like Server.close()."""
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the ListenerSet's table watch pauses accept
                log.debug("VIP %s:%d: accept failed: %s", *self.key, exc)
                return
            vip = self.balancer.snapshot.vips.get(self.key)
            proto = self.admit() if vip is not None else None
            if proto is None:
                conn.close()
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if is_listed(vip, peer):
                _HeaderReader(self, vip, conn, peer, proto)  # type: ignore[arg-type]
            else:
                self.handshake(conn, proto, b"")

    def handshake(self, conn: socket.socket, proto: asyncio.Protocol, head: bytes) -> None:
        task = self.loop.create_task(self._handshake(conn, proto, head))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handshake(self, conn: socket.socket, proto: asyncio.Protocol, head: bytes) -> None:
        factory = (lambda: _Told(proto, head)) if head else (lambda: proto)
        try:
            await self.loop.connect_accepted_socket(factory, conn, ssl=self.ctx,
                                                    ssl_handshake_timeout=self.handshake_s)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:  # the transport closed the socket
            log.debug("VIP %s:%d: TLS handshake failed: %s", *self.key, exc)


class _HeaderReader(HeaderWait):
    """A listed peer's PROXY header, read off the raw socket before TLS: peek, then take
    exactly the bytes that belong to the header, so the ClientHello stays in the kernel."""

    __slots__ = ("acceptor", "conn", "proto", "fd")

    def __init__(self, acceptor: TlsAcceptor, vip: Vip, conn: socket.socket, peer: tuple,
                 proto: asyncio.Protocol) -> None:
        super().__init__(acceptor.balancer, vip, peer)
        self.acceptor = acceptor
        self.conn = conn
        self.proto = proto
        self.fd = conn.fileno()
        self._wait(acceptor.loop)
        acceptor.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = self.conn.recv(proxyproto.V2_MAX, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._settle()
            self._close()
            return
        if not data:
            if not self._peer_closed():
                self._close()
            return
        header = self._parse(self.buf + data)
        if self.done:  # refused as malformed
            return
        # an incomplete header: every byte peeked is the header's; a complete one: its rest
        self.buf += self.conn.recv(len(data) if header is None else header.length - len(self.buf))
        if header is None:
            return
        self._settle()
        self.acceptor.loop.remove_reader(self.fd)
        self.acceptor.handshake(self.conn, self.proto, bytes(self.buf))

    def _abort(self) -> None:
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        self._close()

    def _close(self) -> None:
        self.acceptor.loop.remove_reader(self.fd)
        self.conn.close()  # the protocol made at accept never saw a transport: nothing to give back


class _Told(asyncio.Protocol):
    """Hands the TLS transport to the protocol made at accept and tells it the PROXY
    header as the connection's first bytes (the ProxyGate parses it as on a plain VIP)."""

    def __init__(self, inner: asyncio.Protocol, head: bytes) -> None:
        self.inner = inner
        self.head = head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        transport.set_protocol(self.inner)
        self.inner.connection_made(transport)
        if not transport.is_closing():
            transport.get_protocol().data_received(self.head)  # type: ignore[attr-defined]
