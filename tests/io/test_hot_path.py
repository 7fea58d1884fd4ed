"""The keep-alive hot path creates no asyncio Task (issue 10 item 3), nor does the connect
of a new server connection (io.flow.Connector), measured on a real
loop with real loopback sockets: the balancer's L7 protocol, an in-process backend and
a client all run on one uvloop loop, and a task factory counts every Task created."""
from __future__ import annotations

import asyncio
import socket
import ssl

import uvloop

from buddylb.io.l7.protocol import L7Client
from buddylb.io.runtime import Balancer
from tests.support.certs import make_cert
from tests.support.net import free_port
from tests.support.onevip import one_vip

VIP_ADDR, SERVER_ADDR = "127.0.0.100", "127.0.1.11"
REQUEST = b"GET /x HTTP/1.1\r\nHost: shop\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
N = 200


class Backend(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            self.t.write(RESPONSE)


def config(vip_port: int, server_port: int) -> str:
    return one_vip(VIP_ADDR, vip_port, [(SERVER_ADDR, server_port)], http=True, sticky=True)


async def exchange(loop, sock: socket.socket) -> bytes:
    await loop.sock_sendall(sock, REQUEST)
    data = b""
    while not data.endswith(b"hello"):
        chunk = await loop.sock_recv(sock, 4096)
        assert chunk, data
        data += chunk
    return data


async def tls_exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(REQUEST)
    data = b""
    while not data.endswith(b"hello"):
        chunk = await reader.read(4096)
        assert chunk, data
        data += chunk
    return data


async def tls_scenario(tmp_path) -> tuple[int, int]:
    """The same over a TLS-terminated VIP: the decrypted requests take the same fast path."""
    loop = asyncio.get_running_loop()
    vip_port, server_port = free_port(VIP_ADDR), free_port(SERVER_ADDR)
    path = tmp_path / "lb.cfg"
    path.write_text(config(vip_port, server_port))
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    client_ctx.check_hostname = False
    balancer = Balancer(path, b"k" * 32)
    backend = await loop.create_server(Backend, SERVER_ADDR, server_port)
    front = await loop.create_server(lambda: L7Client(balancer, (VIP_ADDR, vip_port), True), VIP_ADDR, vip_port,
                                     ssl=server_ctx)
    created: list[str] = []

    def factory(loop, coro, **kw):
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kw)

    reader, writer = await asyncio.open_connection(VIP_ADDR, vip_port, ssl=client_ctx)
    try:
        loop.set_task_factory(factory)
        assert (await tls_exchange(reader, writer)).startswith(b"HTTP/1.1 200 ")  # connects: no task either
        first = len(created)
        for _ in range(N):
            assert (await tls_exchange(reader, writer)).endswith(b"hello")
        return first, len(created) - first
    finally:
        loop.set_task_factory(None)
        writer.close()
        front.close()
        backend.close()
        balancer.pool.close_all()
        await asyncio.sleep(0)


async def scenario(tmp_path) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    vip_port, server_port = free_port(VIP_ADDR), free_port(SERVER_ADDR)
    path = tmp_path / "lb.cfg"
    path.write_text(config(vip_port, server_port))
    balancer = Balancer(path, b"k" * 32)
    backend = await loop.create_server(Backend, SERVER_ADDR, server_port)
    front = await loop.create_server(lambda: L7Client(balancer, (VIP_ADDR, vip_port)), VIP_ADDR, vip_port)
    created: list[str] = []

    def factory(loop, coro, **kw):
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kw)

    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (VIP_ADDR, vip_port))
        loop.set_task_factory(factory)
        assert (await exchange(loop, sock)).startswith(b"HTTP/1.1 200 ")  # connects: no task either
        first = len(created)
        for _ in range(N):
            assert (await exchange(loop, sock)).endswith(b"hello")
        return first, len(created) - first
    finally:
        loop.set_task_factory(None)
        sock.close()
        front.close()
        backend.close()
        balancer.pool.close_all()
        await asyncio.sleep(0)


def test_keep_alive_requests_on_a_pooled_connection_create_no_task(tmp_path):
    first, hot = uvloop.run(scenario(tmp_path))
    # the first request opens the server connection: io.flow.Connector is called back by
    # io.pool.Pool.dial (io.tcp.connect), so not even that one is a Task
    assert first == 0
    assert hot == 0  # then N requests, each decided and relayed inside the read callbacks


def test_keep_alive_requests_over_tls_create_no_task_either(tmp_path):
    first, hot = uvloop.run(tls_scenario(tmp_path))
    assert first == 0  # the server connection is dialled as on a plain VIP (io.pool.Pool.dial)
    assert hot == 0  # the decrypted requests take the same fast path: no task each
