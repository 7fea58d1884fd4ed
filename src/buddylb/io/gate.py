"""The access-list gate at the accept boundary (SPEC §2.4), independent of L4/L7.

For a VIP that an `access-group` protects, the listener's protocol factory returns an
`AclGate` instead of the relay.  When the connection is made the gate asks the VIP's
`core.acl.VipFilter` (pure) about the client's address and port; a denied connection is
aborted at once (nothing is read, no server is chosen) and counted, a permitted one is
handed to the real protocol with `transport.set_protocol`, so the gate costs nothing
per byte.  For a TLS VIP asyncio calls `connection_made` after the handshake: the
client is refused then, before any request is read.

It decides nothing itself (core.acl does) and never touches the relay's internals.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

from buddylb.core.acl import TCP
from buddylb.core.snapshot import Vip

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.acl")
LOG_EVERY_S = 10.0  # denied connections are logged at most this often, with a count


class AclGate(asyncio.Protocol):
    __slots__ = ("balancer", "vip", "make")

    def __init__(self, balancer: "Balancer", vip: Vip, make: Callable[[], asyncio.Protocol]) -> None:
        self.balancer = balancer
        self.vip = vip
        self.make = make

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        gate = self.vip.acl
        if gate is None or not peer:
            permitted, acl, seq = gate is None, None, None
        else:
            permitted, acl, seq = gate.decide(TCP, peer[0], peer[1], self.vip.address, self.vip.port)
        self.balancer.acl_counters.count(self.vip.context, self.vip.name, permitted, acl, seq)
        if not permitted:
            _log_denied(self.balancer, self.vip, peer, acl, seq)
            transport.abort()
            return
        real = self.make()
        transport.set_protocol(real)
        real.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        return None  # only after a denial, while the abort completes

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        return None


_last_log = [0.0, 0]  # (time of the last log line, denials since)


def _log_denied(balancer: "Balancer", vip: Vip, peer: object, acl: str | None, seq: int | None) -> None:
    """Rate-limited: a scan of denied clients must not flood the log."""
    _last_log[1] += 1
    now = time.monotonic()
    if now - _last_log[0] < LOG_EVERY_S:
        return
    why = f"access-list {acl} line {seq}" if acl is not None else "implicit deny"
    log.warning("VIP %s: connection from %s denied by %s (%d denied since the last such line)",
                vip.name, peer, why, _last_log[1])
    _last_log[0], _last_log[1] = now, 0
