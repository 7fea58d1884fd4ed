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

`preface` is the header a `send-proxy` farm's server connection opens with: the client
(the origin's source, else the real peer) and the destination (the origin's, else the
VIP), so a chain of proxies passes on what it was told (proxy-protocol.txt §3).

It parses nothing itself and decides nothing about servers.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
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


class ProxyGate(asyncio.Protocol):
    """The protocol of a connection to an accept-proxy VIP until the relay takes over."""

    __slots__ = ("balancer", "vip", "make", "transport", "peer", "buf", "listed", "real", "slot", "wheel", "done")

    def __init__(self, balancer: "Balancer", vip: Vip, make: Callable[[Origin | None], asyncio.Protocol]) -> None:
        self.balancer = balancer
        self.vip = vip
        self.make = make  # the relay, given the origin the header named (None: the real peer)
        self.transport: Any = None
        self.peer: tuple = ("", 0)
        self.buf = bytearray()
        self.listed = False
        self.real: asyncio.Protocol | None = None  # an unlisted peer's relay, while we watch its first bytes
        self.slot: int | None = None  # our bucket in the timer wheel (listed peers)
        self.wheel: Any = None
        self.done = False  # handed over or refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        try:
            address = ipaddress.ip_address(self.peer[0])
        except ValueError:
            address = None
        self.listed = address is not None and any(address in net for net in self.vip.accept_proxy)
        if self.listed:
            snap = self.balancer.snapshot
            limit = snap.timeouts["http-request" if self.vip.policy.http else "client"]
            self.wheel = shared_wheel(self.balancer, asyncio.get_running_loop())
            self.wheel.arm(self, self.wheel.loop.time() + limit)
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
        try:
            header = proxyproto.parse(self.buf)
        except proxyproto.BadProxyHeader as exc:
            self._refuse("malformed", exc.reason)
            return
        if header is None:
            return
        self.done = True
        self.wheel.disarm(self)
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
        self.done = True
        real, data = self.real, bytes(self.buf)
        self.buf = bytearray()
        assert real is not None
        self.transport.set_protocol(real)
        if data:
            real.data_received(data)

    def fire(self) -> None:  # the wheel: the header did not arrive in time
        if not self.done:
            self._refuse("timeout", "no complete PROXY header in time")

    def _refuse(self, kind: str, reason: str) -> None:
        self.done = True
        if self.wheel is not None:
            self.wheel.disarm(self)
        key = (self.vip.context, self.vip.name, kind)
        counts = self.balancer.proxy_refused
        counts[key] = counts.get(key, 0) + 1
        RATE.note(f"proxy_{kind}", f"VIP {self.vip.name}: connection from {self.peer[0]} closed: {reason}",
                  logging.WARNING, f"connections closed for their PROXY header ({kind})")
        self.transport.abort()

    def eof_received(self) -> bool | None:
        if self.done:
            return False
        if self.real is not None:  # an unlisted peer half-closed before its bytes told: they are data
            self._hand_over()
            return self.real.eof_received()
        if self.buf:  # proxy-protocol.txt §2.2: partial headers are rejected
            self._refuse("truncated", "the peer closed within the PROXY header")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.wheel is not None:
            self.wheel.disarm(self)
        if self.real is not None:
            self.real.connection_lost(exc)  # the unlisted peer's relay gives its lease back
        self.done = True

    def pause_writing(self) -> None:
        if self.real is not None:
            self.real.pause_writing()

    def resume_writing(self) -> None:
        if self.real is not None:
            self.real.resume_writing()
