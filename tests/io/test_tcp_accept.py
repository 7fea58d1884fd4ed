"""io/accept.py (a plain VIP's accept) and io/tcp.py's socket calls on bare descriptors,
with real loopback sockets (IPv4 and IPv6): an accepted connection is a Transport on its
descriptor (no socket object; compiled, accept4/recv/send/shutdown/close are C calls), so its peer
address, socket options, errors and descriptor bookkeeping are checked through the
public interface here, on both the compiled and the pure-Python path (BUDDYLB_PURE=1)."""
from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest
import uvloop

from buddylb.io import accept, tcp


class Echo:
    """Writes back what it reads, as `shape` (bytes, bytearray or memoryview); records events."""

    def __init__(self, shape=bytes) -> None:
        self.shape = shape
        self.transport = None
        self.events: list = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.events.append("data")
        self.transport.write(self.shape(data))

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.transport.write_eof()
        return True  # half-close: the transport stays open until we close it

    def connection_lost(self, exc) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def open_sockets() -> set[str]:
    """The sockets this process holds a descriptor of ("socket:[inode]"), to tell whether
    one connection's descriptor was closed (the clients' uvloop transports close later
    and may leave a /dev/null placeholder, so counting descriptors would not tell)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, gone already
            pass
    return {link for link in out if link.startswith("socket:")}


def link_of(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def run(coro):
    return uvloop.run(asyncio.wait_for(coro, 20))


async def serve(family: int, host: str, factory):
    """A listening socket on `host` and an accept.Server on a dup of it (as io/listeners does)."""
    listener = socket.socket(family)
    listener.bind((host, 0))
    listener.listen(16)
    server = accept.Server(tcp.shared_poller(asyncio.get_running_loop()), listener.dup(), factory)
    return listener, server


async def serve_echo(family: int = socket.AF_INET, host: str = "127.0.0.1", shape=bytes):
    """serve() with Echo protocols, the ones made listed in order; and one client connected."""
    made: list[Echo] = []

    def factory():
        made.append(Echo(shape))
        return made[-1]

    listener, server = await serve(family, host, factory)
    reader, writer = await asyncio.open_connection(host, listener.getsockname()[1], family=family)
    return made, listener, server, reader, writer


async def wait_for(cond, what: str) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_accepted_connection_knows_its_addresses_and_echoes_with_half_close(family, host):
    """peername is the client's own address tuple (IPv6: host, port, flowinfo, scope_id),
    sockname the listener's; bytes go both ways; the client's FIN reaches eof_received and
    write_eof() sends ours after the echoed bytes."""
    async def main():
        made, listener, server, reader, writer = await serve_echo(family, host)
        writer.write(b"ping")
        await writer.drain()
        echoed = await reader.readexactly(4)
        writer.write_eof()
        rest = await reader.read()  # our FIN after the echo: b""
        await wait_for(lambda: made and "eof" in made[0].events, "eof_received")
        t = made[0].transport
        info = (t.get_extra_info("peername"), t.get_extra_info("sockname"), t.get_extra_info("nothing", 7))
        t.close()
        exc = await made[0].lost
        client = writer.get_extra_info("sockname")
        writer.close()
        server.close()
        listener_addr = listener.getsockname()
        listener.close()
        return echoed, rest, info, client, listener_addr, exc, made[0].events

    echoed, rest, (peer, ours, other), client, listener_addr, exc, events = run(main())
    assert echoed == b"ping" and rest == b""
    assert peer == client and type(peer) is tuple and len(peer) == (2 if family == socket.AF_INET else 4)
    assert ours == listener_addr and other == 7
    assert exc is None and events == ["data", "eof", "lost"]


@pytest.mark.parametrize("shape", [bytearray, memoryview])
def test_writes_of_other_buffer_types_arrive_whole(shape):
    """write() takes any bytes-like object (the C send reads it through the buffer protocol)."""
    payload = bytes(range(256)) * 1024  # 256 KiB: more than one send for a loopback socket, some of it buffered

    async def main():
        made, listener, server, reader, writer = await serve_echo(shape=shape)
        writer.write(payload)
        writer.write_eof()
        got = await reader.read()
        writer.close()
        made[0].transport.close()
        await made[0].lost
        server.close()
        listener.close()
        return got

    assert run(main()) == payload


def test_socket_extra_info_is_a_duplicate_with_the_connections_options():
    """get_extra_info("socket"): a socket object on a duplicate descriptor: TCP_NODELAY set
    on the listener is there (Linux copies it to accepted sockets); closing it leaves the
    connection working; after close() the transport answers the default."""
    async def main():
        made, listener, server, reader, writer = await serve_echo()
        await wait_for(lambda: made, "the accept")
        t = made[0].transport
        dup = t.get_extra_info("socket")
        nodelay = dup.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        same_peer = dup.getpeername() == writer.get_extra_info("sockname")
        dup.close()
        writer.write(b"still here")
        echoed = await reader.readexactly(10)
        t.close()
        await made[0].lost
        after = t.get_extra_info("socket", "gone")
        writer.close()
        server.close()
        listener.close()
        return nodelay, same_peer, echoed, after

    nodelay, same_peer, echoed, after = run(main())
    assert nodelay == 1 and same_peer and echoed == b"still here" and after == "gone"


def test_a_client_reset_reaches_connection_lost_and_frees_the_descriptor():
    """A client that closes with SO_LINGER 0 (an RST): the read fails with
    ConnectionResetError, which connection_lost receives; no descriptor stays open."""
    async def main():
        made, listener, server, reader, writer = await serve_echo()
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        ours = link_of(made[0].transport.fd)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        exc = await made[0].lost
        still_open = ours in open_sockets()
        server.close()
        listener.close()
        return exc, ours, still_open

    exc, ours, still_open = run(main())
    assert isinstance(exc, ConnectionResetError)
    assert ours.startswith("socket:") and not still_open


def test_a_failing_protocol_factory_closes_the_accepted_descriptor():
    """The factory raises (a bug): the exception goes to the loop's handler, the accepted
    descriptor is closed (the client sees EOF), and the next connection is served."""
    async def main():
        loop = asyncio.get_running_loop()
        errors: list = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx.get("exception")))
        calls = [0]
        made: list[Echo] = []

        def factory():
            calls[0] += 1
            if calls[0] == 1:
                raise RuntimeError("factory bug")
            made.append(Echo())
            return made[-1]

        listener, server = await serve(socket.AF_INET, "127.0.0.1", factory)
        before = open_sockets()
        r1, w1 = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        first = await r1.read()  # closed by us: EOF (or a reset)
        w1.close()
        r2, w2 = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        w2.write(b"two")
        second = await r2.readexactly(3)
        w2.close()
        made[0].transport.close()
        await made[0].lost
        await wait_for(lambda: open_sockets() <= before, "the sockets to be closed")  # the clients' close a pass later
        after = open_sockets()
        server.close()
        listener.close()
        return first, second, errors, before, after

    first, second, errors, before, after = run(main())
    assert first == b"" and second == b"two"
    assert any(isinstance(e, RuntimeError) and str(e) == "factory bug" for e in errors)
    assert after == before
