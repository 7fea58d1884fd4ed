"""The pooled server connection's close: it lets go of its transport (a transport that
still refers to its protocol when connection_lost runs, as io.tcp's does until it
returns, would otherwise make a reference cycle left to the cyclic GC), leaves the pool,
tells its owner, and drops a late write as a closed transport would."""
from __future__ import annotations

import gc
import weakref

from buddylb.io.pool import Pool, ServerConn


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Owner:
    def __init__(self) -> None:
        self.lost: list = []

    def server_lost(self, exc) -> None:
        self.lost.append(exc)


def test_a_lost_connection_leaves_the_pool_and_its_transport_and_tells_its_owner() -> None:
    pool = Pool()
    idle, busy, t = ServerConn(pool, ("127.0.1.11", 80)), ServerConn(pool, ("127.0.1.11", 80)), Transport()
    idle.connection_made(Transport())
    busy.connection_made(t)
    pool.idle[idle.target] = [idle]
    owner = Owner()
    busy.owner = owner
    busy.write(b"GET / HTTP/1.1\r\n\r\n")
    busy.connection_lost(None)
    idle.connection_lost(None)
    assert owner.lost == [None] and busy.owner is None
    assert busy.transport is None and idle.transport is None and not busy.alive
    assert pool.idle[idle.target] == [] and pool.take("127.0.1.11", 80) is None
    busy.write(b"late")  # dropped, as a closed transport drops it
    assert t.written == [b"GET / HTTP/1.1\r\n\r\n"]


def test_a_closed_connection_and_its_transport_are_freed_without_the_cyclic_gc() -> None:
    class Loopish(Transport):
        """Still refers to its protocol when connection_lost is called (io.tcp.Transport does)."""

        def __init__(self, proto: ServerConn) -> None:
            super().__init__()
            self.data_received = proto.data_received

    pool = Pool()
    conn = ServerConn(pool, ("127.0.1.11", 80))
    conn.connection_made(Loopish(conn))
    gone = weakref.ref(conn.transport)
    gc.disable()
    try:
        conn.connection_lost(None)
        del conn
        assert gone() is None  # freed by reference counting, not left for a collection
    finally:
        gc.enable()
