"""VIP listening sockets that survive reloads.

Each VIP address:port is bound once (SO_REUSEADDR, optionally SO_REUSEPORT for
`--workers`) and kept across reloads: a reload never re-binds a VIP that still exists,
so no connection in the accept backlog is lost (issue 5: reload under load).  asyncio
Servers are built on a dup() of the socket, so a server can be replaced (its TLS
certificate changed) while the original socket keeps listening.

The protocol factory reads the *current* snapshot at accept time, so a reload that
changes a VIP's policy (L4 <-> L7, another farm) applies to the next connection.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from buddylb.core.snapshot import Snapshot, Vip
from buddylb.errors import LbError
from buddylb.io import tls

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.listen")
BACKLOG = 1024


@dataclass
class Listener:
    key: tuple[str, int]
    sock: socket.socket
    server: asyncio.AbstractServer | None
    tls_id: tuple | None


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

    def bind(self, snap: Snapshot) -> dict:
        """Bind the VIPs of `snap` that are not bound yet and load every TLS context.

        Raises LbError (naming the VIP and config line) and changes nothing when a VIP
        cannot be bound or a certificate cannot be loaded: a failed reload keeps serving."""
        fresh: dict[tuple[str, int], socket.socket] = {}
        contexts = {}
        try:
            for key, vip in snap.vips.items():
                if vip.tls is not None:
                    contexts[key] = tls.server_context(vip.tls, snap.source)
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
        loop = asyncio.get_running_loop()
        for key, lst in list(self.listeners.items()):
            vip = snap.vips.get(key)
            if vip is None:
                await self._drop(lst)
                del self.listeners[key]
                log.info("VIP %s:%d removed; listener closed", *key)
                continue
            tid = tls.identity(vip.tls)
            if lst.server is None or tid != lst.tls_id:
                old = lst.server
                is_tls = vip.tls is not None
                lst.server = await loop.create_server(
                    lambda k=key, t=is_tls: self.factory(k, t),
                    sock=lst.sock.dup(),
                    backlog=BACKLOG,
                    ssl=contexts.get(key),
                    ssl_handshake_timeout=snap.timeouts["tls-handshake"] if is_tls else None,
                )
                lst.tls_id = tid
                if old is not None:
                    old.close()
                log.info("VIP %s listening%s", vip.name, " (TLS)" if is_tls else "")

    def stop_accepting(self) -> None:
        """SIGTERM: close every listening socket, so new connections are refused at once
        (closing only the asyncio Server would leave the kernel completing handshakes on
        the original socket that nobody accepts)."""
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
