"""The demo's real servers: tiny HTTP/1.1 servers on 127.0.1.x that answer with their name.

Owns their lifetime: an asyncio loop in one background thread, one listening socket
per (rserver, serverfarm), every rserver of a farm on the same free port (as the seed
example has lnx1 and lnx2 both on 8080).  Each answers any request with `200` and its
name as the body plus an `X-Server` header, keeps the connection alive unless asked
to close, and never looks at what the balancer decided.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable

from buddylb.errors import CommandError

_PORT_TRIES = 20
_MAX_HEAD = 64 * 1024


class _NameServer(asyncio.Protocol):
    """Answers every HTTP request with the server's name (requests without bodies expected)."""

    def __init__(self, name: str, open_transports: set[asyncio.BaseTransport]) -> None:
        self.name = name.encode()
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.open = open_transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.open.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            close = b"\r\nconnection: close" in head.lower()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                                 b"X-Server: %s\r\n%s\r\n%s\n"
                                 % (len(self.name) + 1, self.name, b"Connection: close\r\n" if close else b"",
                                    self.name))
            if close:
                self.transport.close()
                return
        if len(self.buf) > _MAX_HEAD:
            self.transport.close()


class DemoBackends:
    """`with DemoBackends() as bk: port = bk.start_farm({"lnx1": "127.0.1.11", ...})`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-backends", daemon=True)
        self.servers: list[asyncio.AbstractServer] = []
        self.transports: set[asyncio.BaseTransport] = set()

    def start(self) -> None:
        self.thread.start()

    def __enter__(self) -> "DemoBackends":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_farm(self, members: dict[str, str]) -> int:
        """Start one server per rserver name -> address, all on one free port; returns it."""
        try:
            return asyncio.run_coroutine_threadsafe(self._start_farm(members), self.loop).result(10)
        except OSError as exc:
            raise CommandError(f"cannot start the demo servers {', '.join(members)}: {exc.strerror or exc}", 1) from exc

    def _factory(self, name: str) -> Callable[[], asyncio.Protocol]:
        return lambda: _NameServer(name, self.transports)

    async def _start_farm(self, members: dict[str, str]) -> int:
        last: OSError | None = None
        for _ in range(_PORT_TRIES):
            started: list[asyncio.AbstractServer] = []
            port = 0
            try:
                for name, address in members.items():
                    server = await self.loop.create_server(self._factory(name), address, port)
                    started.append(server)
                    port = port or int(server.sockets[0].getsockname()[1])
            except OSError as exc:  # the port was taken on a later address: try another one
                last = exc
                for s in started:
                    s.close()
                continue
            self.servers.extend(started)
            return port
        assert last is not None
        raise last

    def close(self) -> None:
        """Close every listener and stop the loop thread (idempotent)."""
        if not self.thread.is_alive():
            if not self.loop.is_closed():
                self.loop.close()
            return

        def shutdown() -> None:
            for s in self.servers:
                s.close()
            for t in list(self.transports):
                t.close()

        self.loop.call_soon_threadsafe(shutdown)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
