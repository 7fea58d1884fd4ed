"""UDP VIPs (`match virtual-address A udp eq P`, SPEC §2.4): a datagram relay.

One socket per UDP VIP.  The first datagram of a client (address, port) opens a *flow*:
the access-groups of the VIP are asked (protocol udp; a denied datagram is dropped and
counted), then the same decision as a TCP connection (`Balancer.decide`: sticky, buddy,
probes, limits) picks an rserver, and a connected UDP socket to it carries the flow's
datagrams; whatever the rserver answers is sent back to the client from the VIP's
address.  A flow ends after `timeout client` without a datagram in either direction
(swept once a second), or when the rserver's socket reports an error (ICMP port
unreachable): the decision is released (`Balancer.closed`) exactly once and an access
log record written.  The next datagram of that client opens a new flow, and the sticky
entry sends it back to the same rserver while it is available.

Datagrams that arrive while the flow's rserver socket is being opened are kept (at most
MAX_PENDING, then dropped: UDP may lose).  No L7, no TLS (config.checks refuses them).

`conn-limit max N [min M]` on a UDP VIP's class counts its open flows, as an ACE counts
UDP "connections": at N the VIP opens no new flow (the datagram of a new client is
dropped and counted, the client retries as it would after any loss; the flows open go
on) until fewer than M (default N) are open.  There is no backlog to wait in, so
dropping is the datagram form of the TCP VIP's paused accept.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING

from buddylb.core.acl import UDP
from buddylb.core.decide import Decision, Flow
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.errors import LbError
from buddylb.io.lograte import RATE
from buddylb.io.record import FlowRecord

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.udp")
MAX_PENDING = 64
SWEEP_EVERY_S = 1.0


class _ServerSide(asyncio.DatagramProtocol):
    def __init__(self, flow: "UdpFlow") -> None:
        self.flow = flow

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.flow.from_server(data)

    def error_received(self, exc: Exception) -> None:
        d = self.flow.decision
        if d is not None:
            self.flow.vip_side.balancer.inband_failed(d)  # ICMP unreachable counts (ACE inband-health)
        self.flow.end("server_error")


class UdpFlow:
    """One client's datagrams through one VIP to one rserver."""

    __slots__ = ("vip_side", "client", "vip", "decision", "transport", "pending", "last", "started",
                 "bytes_in", "bytes_out", "ended")

    def __init__(self, vip_side: "UdpVip", client: tuple, vip: Vip) -> None:
        self.vip_side = vip_side
        self.client = client
        self.vip = vip
        self.decision: Decision | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last = time.monotonic()
        self.started = time.time()
        self.bytes_in = 0
        self.bytes_out = 0
        self.ended = False

    def from_client(self, data: bytes) -> None:
        self.last = time.monotonic()
        self.bytes_in += len(data)
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def from_server(self, data: bytes) -> None:
        self.last = time.monotonic()
        self.bytes_out += len(data)
        if self.vip_side.transport is not None:
            self.vip_side.transport.sendto(data, self.client)

    async def open(self, balancer: "Balancer", snap: Snapshot) -> None:
        flow = Flow(self.client[0], self.vip.address)
        if balancer.store.shared:
            d = await balancer.decide_shared(self.vip, flow, snap)
        else:
            d = balancer.decide(self.vip, flow, snap)
        self.decision = d
        if self.ended or d.member is None:
            self.end("no_server" if d.member is None else "closed")
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _ServerSide(self), remote_addr=(d.member.address, d.port))
        except OSError as exc:
            log.warning("UDP VIP %s: cannot reach %s:%d: %s", self.vip.name, d.member.address, d.port, exc)
            self.end("connect_failed")
            return
        if self.ended:
            transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        for data in self.pending:
            transport.sendto(data)
        self.pending = []

    def end(self, status: str) -> None:
        """Release the decision once, close the rserver socket, log the flow."""
        if self.ended:
            return
        self.ended = True
        self.vip_side.flows.pop(self.client, None)
        if self.transport is not None:
            self.transport.close()
        balancer, d = self.vip_side.balancer, self.decision
        if d is not None and d.member is not None:
            balancer.closed(d)
        rec = FlowRecord(self.client[0], "udp", self.started)
        rec.vip = f"{self.vip.name}/udp"
        if d is not None:
            rec.decision(d)
        rec.status = status
        rec.bytes_in, rec.bytes_out = self.bytes_in, self.bytes_out
        rec.end(time.time())
        balancer.access_log(rec)


class UdpVip(asyncio.DatagramProtocol):
    """The VIP's socket: datagrams in, flows by client address."""

    def __init__(self, balancer: "Balancer", key: tuple[str, int]) -> None:
        self.balancer = balancer
        self.key = key
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple, UdpFlow] = {}
        self.tasks: set[asyncio.Task] = set()
        self.full = False  # at its conn-limit max: no new flow until fewer than min are open

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            snap = self.balancer.snapshot
            vip = snap.udp_vips.get(self.key)
            if vip is None or not vip.inservice or not self._permitted(vip, addr):
                return
            if vip.conn_limit is not None and not self._room(vip):
                return
            flow = self.flows[addr] = UdpFlow(self, addr, vip)
            task = asyncio.get_running_loop().create_task(flow.open(self.balancer, snap))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        flow.from_client(data)

    def _room(self, vip: Vip) -> bool:
        """Whether a new flow may open under the VIP's `conn-limit`; a datagram that may
        not is counted as dropped (buddylb_vip_conn_limit_dropped_total)."""
        cmax, cmin = vip.conn_limit  # type: ignore[misc]
        open_flows = len(self.flows)
        if self.full and open_flows < cmin:
            self.full = False
        accept = self.balancer.accept
        name = f"{vip.name}/udp"
        if not self.full and open_flows >= cmax:
            self.full = True
            accept.limit_pauses[name] = accept.limit_pauses.get(name, 0) + 1
            RATE.note("vip_conn_limit", f"UDP VIP {vip.name}: conn-limit max {cmax:,} flows reached; datagrams "
                      f"of new clients are dropped until fewer than {cmin:,} flows are open", logging.WARNING,
                      "accept pauses at a VIP's conn-limit")
        if self.full:
            accept.limit_dropped[name] = accept.limit_dropped.get(name, 0) + 1
            return False
        return True

    def _permitted(self, vip: Vip, addr: tuple) -> bool:
        if vip.acl is None:
            return True
        permitted, acl, seq = vip.acl.decide(UDP, addr[0], addr[1], vip.address, vip.port)
        self.balancer.acl_counters.count(vip.context, f"{vip.name}/udp", permitted, acl, seq)
        return permitted

    def sweep(self, idle_s: float) -> None:
        now = time.monotonic()
        for flow in [f for f in self.flows.values() if now - f.last > idle_s]:
            flow.end("idle")

    def close(self) -> None:
        for flow in list(self.flows.values()):
            flow.end("stopped")
        for task in self.tasks:
            task.cancel()
        if self.transport is not None:
            self.transport.close()


class UdpListeners:
    """Every UDP VIP of the current snapshot, kept across reloads like the TCP ones."""

    def __init__(self, balancer: "Balancer", reuse_port: bool = False) -> None:
        self.balancer = balancer
        self.reuse_port = reuse_port  # --workers: each worker binds; the kernel spreads by 4-tuple
        self.vips: dict[tuple[str, int], UdpVip] = {}
        self.sweeper: asyncio.Task | None = None

    async def apply(self, snap: Snapshot) -> None:
        """Open the UDP VIPs `snap` adds, close those it drops; raises LbError naming the
        VIP when one cannot be bound."""
        loop = asyncio.get_running_loop()
        for key in [k for k in self.vips if k not in snap.udp_vips]:
            self.vips.pop(key).close()
        for key, vip in snap.udp_vips.items():
            if key in self.vips:
                continue
            family = socket.AF_INET6 if ":" in vip.address else socket.AF_INET
            try:
                _, proto = await loop.create_datagram_endpoint(
                    lambda k=key: UdpVip(self.balancer, k), local_addr=(vip.address, vip.port), family=family,
                    reuse_port=self.reuse_port or None)
            except OSError as exc:
                raise LbError(f"{snap.source}:{vip.line}: UDP VIP {vip.name} cannot listen: "
                              f"{exc.strerror or exc}") from exc
            self.vips[key] = proto
            log.info("UDP VIP %s listening", vip.name)
        if self.sweeper is None and self.vips:
            self.sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            idle = self.balancer.snapshot.timeouts["client"]
            for udp in list(self.vips.values()):
                udp.sweep(idle)

    def open_flows(self) -> int:
        return sum(len(v.flows) for v in self.vips.values())

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for udp in self.vips.values():
            udp.close()
        self.vips.clear()
