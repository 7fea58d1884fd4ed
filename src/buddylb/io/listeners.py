"""VIP listening sockets that survive reloads.

Each VIP address:port is bound once (SO_REUSEADDR, optionally SO_REUSEPORT for
`--workers`) and kept across reloads: a reload never re-binds a VIP that still exists,
so no connection in the accept backlog is lost (issue 5: reload under load).  asyncio
Servers are built on a dup() of the socket, so a server can be replaced (its TLS
certificate changed) while the original socket keeps listening.

The protocol factory reads the *current* snapshot at accept time, so a reload that
changes a VIP's policy (L4 <-> L7, another farm) applies to the next connection.

Descriptor budget (SPEC §5, issue 13 item 2; the arithmetic is `io/descriptors.py`): at
`maxconn` open client connections every asyncio Server is closed, which pauses accept
while the original sockets keep listening, so new clients wait in the kernel's backlog
instead of meeting EMFILE; the close of a client connection (or, as a fallback, a
slow poll) re-opens the Servers once the count falls to the resume mark. Clients
accepted in the same batch beyond a small overshoot are closed.

When the budget is wrong (the limit was lowered under us, something else in the process
holds descriptors), accept would meet EMFILE inside libuv, which then closes every
waiting client without a word; a watch that asks once a second whether the descriptor
table is full (`descriptors.table_full`) logs it, counts it and pauses accept instead.
"""
from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import resource
import socket
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable

from buddylb.core.snapshot import Snapshot, Vip
from buddylb.errors import LbError
from buddylb.io import accept, descriptors, tcp, tls
from buddylb.io.admit import Admit
from buddylb.io.proxied import TlsAcceptor
from buddylb.io.lograte import RATE

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.listen")
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn; while accept pauses, clients wait here
WATCH_S = 1.0  # while accept is paused: the fallback poll (a closing client resumes it at once)
FULL_CHECK_S = 1.0  # how often the descriptor table is checked for room (one open and close)


@dataclass
class Listener:
    key: tuple[str, int]
    sock: socket.socket
    server: asyncio.AbstractServer | TlsAcceptor | None
    tls_id: tuple | None
    ssl: object = None  # the SSLContext served, kept to resume accept after a pause
    handshake_s: float | None = None
    proxied: bool = False  # TLS with accept-proxy: io.proxied.TlsAcceptor reads the header before TLS
    # a plain (not TLS) VIP, L4 or L7: served by io.tcp, below uvloop's transports (L7 new
    # connection per request: 55 -> 40 us CPU per connection, uvloop's per-transport
    # machinery was most of the difference); TLS VIPs keep uvloop's SSL transports
    raw: bool = False


def bind_vip(vip: Vip, source: str, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in vip.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((vip.address, vip.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = {
            errno.EADDRINUSE: "address already in use (another process listens there)",
            errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
            errno.EADDRNOTAVAIL: "address not available on this host",
        }.get(exc.errno or 0, str(exc))
        raise LbError(
            f"{source}:{vip.line}: VIP {vip.name} (class {vip.class_name}) cannot listen: {reason}"
        ) from exc
    return sock


class ListenerSet:
    def __init__(self, balancer: "Balancer", factory: Callable[[tuple[str, int], bool], asyncio.Protocol],
                 reuse_port: bool = False, prebound: dict | None = None) -> None:
        self.balancer = balancer
        self.prebound = prebound or {}  # sockets bound by the --workers master, steered by source
        self.factory = factory
        self.reuse_port = reuse_port
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.budget: descriptors.Budget | None = None
        self.accept = balancer.accept
        self.stopped = False
        self.watch: asyncio.TimerHandle | None = None
        self.fdwatch: asyncio.TimerHandle | None = None
        self.accept.on_release = self._released
        self.accept.on_vip_full = self._vip_full
        self.vip_paused: set[tuple[str, int]] = set()  # VIPs at their conn-limit: not accepting
        self._start: tuple[int, int] | None = None  # (nofile, descriptors in use) at start-up

    def plan(self, snap: Snapshot) -> descriptors.Budget:
        """The budget for `snap` (start-up and every reload: probes and `maxconn` may change)."""
        if self._start is None:
            self._start = (descriptors.raise_nofile(), descriptors.open_descriptors())
        probes = sum(len(f.members) * len(f.probes) for c in snap.contexts.values() for f in c.farms.values())
        budget = descriptors.plan(*self._start, probes, descriptors.ADMIN_CONNECTIONS, snap.config.maxconn)
        if budget.configured is not None and budget.configured > budget.derived:
            log.warning("maxconn %d needs about %d descriptors, but the limit is %d: using maxconn %d; raise "
                        "the limit (ulimit -n, LimitNOFILE=) or lower maxconn", budget.configured,
                        2 * budget.configured + budget.in_use + budget.reserved, budget.nofile, budget.maxconn)
        if self.budget is None or self.budget.maxconn != budget.maxconn:
            log.info("%s", budget.describe())
        self.budget = budget
        self.accept.maxconn = budget.maxconn
        self._limit_vips(snap)
        return budget

    def _limit_vips(self, snap: Snapshot) -> None:
        """Take the VIPs' `conn-limit`s from `snap`; a VIP whose limit went away, or rose
        above its open count, accepts again (`apply` serves it)."""
        limits = {key: vip.conn_limit for key, vip in snap.vips.items() if vip.conn_limit is not None}
        self.accept.limits = limits
        for key in list(self.accept.vip_open):
            if key not in limits:
                del self.accept.vip_open[key]
        for key in list(self.vip_paused):
            if key not in limits or self.accept.vip_open.get(key, 0) < limits[key][1]:
                self.vip_paused.discard(key)
        self.accept.sync()

    def _vip_full(self, key: tuple[str, int]) -> None:
        """VIP `key` reached its `conn-limit max`: it alone stops accepting; its new
        clients wait in the kernel's backlog (the other VIPs are not affected)."""
        if key in self.vip_paused:
            return
        self.vip_paused.add(key)
        self.accept.vip_pauses += 1
        name = f"[{key[0]}]:{key[1]}" if ":" in key[0] else f"{key[0]}:{key[1]}"  # Vip.name
        self.accept.limit_pauses[name] = self.accept.limit_pauses.get(name, 0) + 1
        lst = self.listeners.get(key)
        if lst is not None and lst.server is not None:
            lst.server.close()
            lst.server = None
        cmax = self.accept.limits[key][0]
        RATE.note("vip_conn_limit", f"VIP {key[0]}:{key[1]}: conn-limit max {cmax:,} reached; accept paused for "
                  "this VIP, new clients wait in the backlog", logging.WARNING, "accept pauses at a VIP's conn-limit")

    def open_connections(self) -> int:
        """Client connections holding descriptors now; idle pooled server connections
        count half (one descriptor each), summed only when it may matter."""
        n = len(self.balancer.flows)
        if self.budget is not None and n * 2 >= self.budget.maxconn:
            n += sum(map(len, self.balancer.pool.idle.values())) // 2
        return n

    def _accepted(self, key: tuple[str, int], is_tls: bool) -> asyncio.Protocol:
        """The protocol factory every Server calls at accept: checks the budget first
        (below half of maxconn, `open_connections` is the open flows alone: no call)."""
        budget = self.budget
        if budget is not None and len(self.balancer.flows) * 2 >= budget.maxconn:
            n = self.open_connections()
            if n >= budget.maxconn:
                self.pause(n)
                if n >= budget.maxconn + descriptors.OVERSHOOT:
                    self.accept.refused += 1
                    RATE.note("accept_refused", f"client closed at accept: {n} connections open, maxconn "
                              f"{budget.maxconn}", logging.WARNING, "clients closed at accept (over maxconn)")
                    return _Refused()
        return self.factory(key, is_tls)

    def _admit(self, key: tuple[str, int]) -> asyncio.Protocol | None:
        """A TlsAcceptor's accept: the budget check and protocol of `_accepted`; None: closed."""
        proto = self._accepted(key, True)
        return None if isinstance(proto, _Refused) else proto

    def _watch_table(self) -> None:
        self.fdwatch = None
        if self.stopped:
            return
        if not self.accept.paused and not descriptors.room(1):
            self.table_full()
        self.fdwatch = asyncio.get_running_loop().call_later(FULL_CHECK_S, self._watch_table)

    def table_full(self) -> None:
        """No descriptor left: the next accept would fail, so the budget is wrong for the
        limit in force. Log it (rate-limited, with a count), count it, lower `maxconn` to
        what fits now, and pause accept so clients wait in the backlog."""
        self.accept.failed += 1
        n = self.open_connections()
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert self.budget is not None
        lowered = max(1, min(self.budget.maxconn, int(n * descriptors.RESUME_AT)))
        self.budget = dataclasses.replace(self.budget, maxconn=lowered)
        self.accept.maxconn = lowered
        RATE.note("accept_failed", f"descriptor table full ({limit:,} descriptors, {n:,} client connections): "
                  f"accept would fail with EMFILE; accept paused, maxconn lowered to {lowered:,}; raise the "
                  "limit (ulimit -n, LimitNOFILE=) or lower maxconn", logging.WARNING,
                  "times the descriptor table was full (accept paused)")
        self.pause(n)

    def _room(self) -> bool:
        """Room to resume: a descriptor for each Server's socket and a few clients."""
        return descriptors.room(len(self.listeners) + descriptors.OVERSHOOT)

    def _released(self, key: tuple[str, int]) -> None:
        """A client connection of VIP `key` closed while accept is paused (globally or
        at that VIP's conn-limit): resume now if there is room."""
        if key in self.vip_paused and self.accept.vip_open.get(key, 0) < self.accept.limits[key][1]:
            self.vip_paused.discard(key)
            lst = self.listeners.get(key)
            if lst is not None and lst.server is None and not self.accept.paused and not self.stopped:
                asyncio.get_running_loop().create_task(self._serve(key, lst))
        if self.watch is not None and not self.stopped and self.budget is not None:
            if self.open_connections() <= self.budget.resume_at and self._room():
                self.watch.cancel()
                self._check()

    def pause(self, n: int) -> None:
        if self.accept.paused or self.stopped:
            return
        self.accept.paused = True
        self.accept.pauses += 1
        self.accept.sync()
        for lst in self.listeners.values():
            if lst.server is not None:
                lst.server.close()
                lst.server = None
        assert self.budget is not None
        RATE.note("accept_paused", f"accept paused: {n} client connections open, maxconn {self.budget.maxconn}; "
                  "new clients wait in the backlog", logging.WARNING, "accept pauses (maxconn reached)")
        self.watch = asyncio.get_running_loop().call_later(WATCH_S, self._check)

    def _check(self) -> None:
        self.watch = None
        if self.stopped or not self.accept.paused:
            return
        assert self.budget is not None
        if self.open_connections() > self.budget.resume_at or not self._room():
            self.watch = asyncio.get_running_loop().call_later(WATCH_S, self._check)
            return
        self.accept.paused = False
        self.accept.sync()
        asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        for key, lst in list(self.listeners.items()):
            if lst.server is None and not self.accept.paused and not self.stopped and key not in self.vip_paused:
                try:
                    await self._serve(key, lst)
                except OSError as exc:  # no descriptor for the Server's dup: still full
                    if exc.errno not in (errno.EMFILE, errno.ENFILE):
                        raise
                    self.table_full()
                    return

    async def _serve(self, key: tuple[str, int], lst: Listener) -> None:
        """Start (or restart) the asyncio Server of `lst` on a dup of its socket."""
        old = lst.server
        server: asyncio.AbstractServer | TlsAcceptor
        if lst.proxied:
            server = TlsAcceptor(self.balancer, key, lst.sock.dup(), lst.ssl, lst.handshake_s,  # type: ignore[arg-type]
                                 lambda k=key: self._admit(k))
        elif lst.raw:
            server = accept.Server(tcp.shared_poller(asyncio.get_running_loop()), lst.sock.dup(),
                                   Admit(self, key, False))  # compiled: no Python frame per accept
        else:
            server = await asyncio.get_running_loop().create_server(
                partial(self._accepted, key, lst.ssl is not None),  # no frame of ours per accept
                sock=lst.sock.dup(),
                backlog=BACKLOG,
                ssl=lst.ssl,  # type: ignore[arg-type]
                ssl_handshake_timeout=lst.handshake_s,
            )
        if self.accept.paused or self.stopped or key not in self.listeners or key in self.vip_paused:
            server.close()  # paused, stopped or removed while it started
            return
        lst.server = server
        if old is not None:
            old.close()

    def bind(self, snap: Snapshot) -> dict:
        """Bind the VIPs of `snap` that are not bound yet and load every TLS context.

        Raises LbError (naming the VIP and config line) and changes nothing when a VIP
        cannot be bound or a certificate cannot be loaded: a failed reload keeps serving."""
        fresh: dict[tuple[str, int], socket.socket] = {}
        contexts = {}
        try:
            for key, vip in snap.vips.items():
                if vip.tls is not None:
                    contexts[key] = tls.server_context(vip.tls, snap.source, tls.L7_ALPN if vip.policy.http else None)
                if key not in self.listeners:
                    fresh[key] = self.prebound.pop(key, None) or bind_vip(vip, snap.source, self.reuse_port)
        except LbError:
            for s in fresh.values():
                s.close()
            raise
        for key, sock in fresh.items():
            self.listeners[key] = Listener(key, sock, None, None)
        return contexts

    async def apply(self, snap: Snapshot, contexts: dict) -> None:
        """Start serving what `bind` prepared; close VIPs that `snap` no longer has."""
        self.plan(snap)
        if self.fdwatch is None and not self.stopped:
            self.fdwatch = asyncio.get_running_loop().call_later(FULL_CHECK_S, self._watch_table)
        for key, lst in list(self.listeners.items()):
            vip = snap.vips.get(key)
            if vip is None:
                await self._drop(lst)
                del self.listeners[key]
                log.info("VIP %s:%d removed; listener closed", *key)
                continue
            # L4 <-> L7: ALPN (TLS) or another transport (plain); accept-proxy on or off: another accept loop
            tid = (tls.identity(vip.tls), vip.policy.http, bool(vip.accept_proxy)) if vip.tls is not None \
                else vip.policy.http
            if lst.server is None or tid != lst.tls_id:
                is_tls = vip.tls is not None
                lst.ssl = contexts.get(key)
                lst.handshake_s = snap.timeouts["tls-handshake"] if is_tls else None
                lst.tls_id = tid
                lst.proxied = is_tls and bool(vip.accept_proxy)
                lst.raw = not is_tls  # L4 and L7 alike (the L7 client protocol is duck-typed)
                if not self.accept.paused and key not in self.vip_paused:  # paused: resumed later
                    await self._serve(key, lst)
                    log.info("VIP %s listening%s", vip.name, " (TLS)" if is_tls else "")

    def stop_accepting(self) -> None:
        """SIGTERM: close every listening socket, so new connections are refused at once
        (closing only the asyncio Server would leave the kernel completing handshakes on
        the original socket that nobody accepts)."""
        self.stopped = True
        for handle in (self.watch, self.fdwatch):
            if handle is not None:
                handle.cancel()
        self.watch = self.fdwatch = None
        for lst in self.listeners.values():
            if lst.server is not None:
                lst.server.close()
                lst.server = None
            lst.sock.close()

    async def _drop(self, lst: Listener) -> None:
        if lst.server is not None:
            lst.server.close()
        lst.sock.close()

    async def close(self) -> None:
        for lst in self.listeners.values():
            await self._drop(lst)
        self.listeners.clear()

    def addresses(self) -> list[tuple[str, int]]:
        return list(self.listeners)


class _Refused(asyncio.Protocol):
    """A client accepted beyond maxconn + overshoot: closed at once, its descriptor freed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
