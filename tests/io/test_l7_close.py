"""One `Connection: close` client connection of an L7 VIP, start to end, on a fake
transport that behaves as uvloop's does after the close (it keeps the protocol's
data_received): the response says `connection: close`, the transport is closed, the
pooled server connection goes back to the pool, and connection_lost leaves nothing for
the cyclic GC (every object of the connection is freed by reference counting)."""
from __future__ import annotations

import gc
import weakref

import uvloop

from buddylb.io.l7.protocol import L7Client
from buddylb.io.pool import ServerConn
from tests.io.conftest import VIP

REQUEST = b"GET /small HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"


class Transport:
    def __init__(self, proto) -> None:
        self.data_received = proto.data_received  # as uvloop keeps it, even after the close
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.9", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_a_close_request_ends_with_the_connection_freed_without_the_cyclic_gc(balancer) -> None:
    async def run() -> None:
        server = ServerConn(balancer.pool, ("127.0.1.11", 8080))
        server.connection_made(Transport(server))
        balancer.pool.give_back(server)
        proto = L7Client(balancer, VIP)
        t = Transport(proto)
        proto.connection_made(t)
        gone = weakref.ref(t)
        gc.disable()
        try:
            t.data_received(REQUEST)
            assert server.transport.written[0].startswith(b"GET /small HTTP/1.1\r\n")
            server.data_received(RESPONSE)
            head = t.written[0]
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in head.lower()
            assert t.closing and balancer.pool.take("127.0.1.11", 8080) is server
            proto.connection_lost(None)
            assert proto not in balancer.flows and proto.slot is None
            del proto, t
            assert gone() is None  # the protocol, its exchange and the transport: freed now
        finally:
            gc.enable()
            balancer.pool.close_all()

    uvloop.run(run())
