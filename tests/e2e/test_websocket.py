"""WebSocket through L7 VIPs (issue 16 item 1): real `websockets` servers and clients.

The SPEC §2 shopping cart: an HTTP VIP (farm http) and a TLS-terminated VIP (farm
decrypted), lnx1/lnx2 in buddy groups blue/red, sticky on the client address.  Every
rserver port is a `websockets` chat server that greets with its name, echoes each
message prefixed with it, and answers plain HTTP requests (its name, 200) and upgrade
requests to /refuse (403) itself.  Clients bind to 127.0.0.N, so each is a distinct source.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from http import HTTPStatus

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.configs import HOSTS, shopping_cart
from tests.support.net import http_get

pytestmark = pytest.mark.e2e
VIP = "127.0.0.100"
SERVERS = (("lnx1", "lnx1_http"), ("lnx2", "lnx2_http"), ("lnx1", "lnx1_dec"), ("lnx2", "lnx2_dec"))


class Chat:
    """The chat servers of one test, on one asyncio loop (the test's)."""

    def __init__(self) -> None:
        self.closes: list[tuple[str, int | None]] = []  # (server, close code) of each ended session
        self.live: dict[str, list] = {}  # server name -> its open connections
        self.servers: list = []

    async def start(self, ports) -> "Chat":
        for host, key in SERVERS:
            name = f"{host}-{key.split('_')[1]}"
            self.servers.append(await serve(self._handler(name), HOSTS[host], ports[key],
                                            process_request=self._plain(name), ping_interval=None))
        return self

    def _plain(self, name: str):
        def process_request(connection, request):
            if request.path == "/refuse":
                return connection.respond(HTTPStatus.FORBIDDEN, "no chat for you\n")
            if "upgrade" not in request.headers.get("Connection", "").lower():
                return connection.respond(HTTPStatus.OK, name)
            return None
        return process_request

    def _handler(self, name: str):
        async def chat(ws) -> None:
            self.live.setdefault(name, []).append(ws)
            try:
                await ws.send(f"hello from {name}")
                async for msg in ws:
                    await ws.send(f"{name}:{msg}" if isinstance(msg, str) else msg[::-1])
            except ConnectionClosed:
                pass
            finally:
                self.closes.append((name, ws.close_code))
                self.live[name].remove(ws)
        return chat

    async def stop(self) -> None:
        for s in self.servers:
            s.close()
            await s.wait_closed()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test's throwaway self-signed certificate
    return ctx


def ws_connect(source: str, port: int, tls: bool = False, path: str = "/chat", **kw):
    scheme = "wss" if tls else "ws"
    return connect(f"{scheme}://{VIP}:{port}{path}", local_addr=(source, 0), ping_interval=None,
                   open_timeout=5, close_timeout=5, compression=None, ssl=client_tls() if tls else None, **kw)


async def until(predicate, timeout: float = 5.0) -> bool:
    """wait_for on the test's loop, which also runs the chat servers: never block it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_chat_both_ways_and_the_close_handshake_on_the_http_and_tls_vips(ports, balancer):
    async def main():
        chat = await Chat().start(ports)
        lb = balancer(shopping_cart(ports), "--access-log-format", "json", certs=True)
        try:
            for port, tls in ((ports["vip_http"], False), (ports["vip_https"], True)):
                async with ws_connect("127.0.0.31", port, tls) as ws:
                    hello = await ws.recv()
                    name = hello.removeprefix("hello from ")
                    assert name.startswith("lnx") and name.endswith("dec" if tls else "http")
                    for i in range(50):
                        await ws.send(f"msg {i}")
                        assert await ws.recv() == f"{name}:msg {i}"
                    blob = bytes(range(256)) * 300  # 75 KiB: many reads and writes each way
                    await ws.send(blob)
                    assert await ws.recv() == blob[::-1]
                    pushed = f"{name} says hi"  # the server speaks first: a chat's push
                    await chat.live[name][0].send(pushed)
                    assert await ws.recv() == pushed
                assert ws.close_code == 1000  # the client's close handshake was answered
                assert await until(lambda: (name, 1000) in chat.closes)
            # one access-log line per tunnel, written when it ended: 101, bytes both ways
            assert await until(lambda: lb.log.exists() and lb.log.read_text().count('"status": 101') == 2)
            recs = [json.loads(x) for x in lb.log.read_text().splitlines() if '"status": 101' in x]
            assert [r["mode"] for r in recs] == ["http", "https"]
            for r in recs:
                assert r["request"] == "GET /chat" and r["bytes_in"] > 75 * 1024 and r["bytes_out"] > 75 * 1024
                assert r["rserver"].startswith("lnx") and r["duration_s"] > 0
        finally:
            await chat.stop()
    run(main())


def test_websocket_clients_stick_per_source_and_follow_the_buddy_to_the_tls_vip(ports, balancer):
    async def main():
        chat = await Chat().start(ports)
        balancer(shopping_cart(ports), certs=True)
        try:
            seen = {}
            for n in range(40, 48):
                source = f"127.0.0.{n}"
                names = []
                for port, tls in ((ports["vip_http"], False), (ports["vip_http"], False), (ports["vip_https"], True)):
                    async with ws_connect(source, port, tls) as ws:
                        names.append((await ws.recv()).removeprefix("hello from "))
                host = names[0].split("-")[0]
                assert names == [f"{host}-http", f"{host}-http", f"{host}-dec"], (source, names)
                # a plain HTTP request from the same source lands where its WebSocket did
                status, headers, body = await asyncio.to_thread(http_get, source, VIP, ports["vip_http"], "/")
                assert (status, body) == (200, f"{host}-http".encode())
                seen[source] = host
            assert set(seen.values()) == {"lnx1", "lnx2"}  # the sources were balanced, then stuck
        finally:
            await chat.stop()
    run(main())


def test_a_refused_upgrade_keeps_the_connection_speaking_http(ports, balancer):
    """The server answers the upgrade with 403: the client gets it, and the same client
    connection goes on with keep-alive HTTP/1.1 requests."""
    async def main():
        chat = await Chat().start(ports)
        balancer(shopping_cart(ports), certs=True)
        try:
            reader, writer = await asyncio.open_connection(VIP, ports["vip_http"], local_addr=("127.0.0.50", 0))
            writer.write(b"GET /refuse HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n")  # the next request, right behind
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 403 ") and b"upgrade" not in head.lower().split(b"\r\n", 1)[1]
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b"no chat for you\n"
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert (await reader.readexactly(length)).startswith(b"lnx")
            writer.close()
            with pytest.raises(InvalidStatus):  # the websockets client sees the 403 too
                async with ws_connect("127.0.0.51", ports["vip_http"], path="/refuse"):
                    pass
        finally:
            await chat.stop()
    run(main())


def test_a_silent_tunnel_is_cut_after_timeout_tunnel(ports, balancer):
    """`timeout tunnel 1`: traffic keeps the tunnel open past it, silence closes it."""
    async def main():
        chat = await Chat().start(ports)
        balancer("timeout tunnel 1\n" + shopping_cart(ports), certs=True)
        try:
            async with ws_connect("127.0.0.52", ports["vip_http"]) as ws:
                name = (await ws.recv()).removeprefix("hello from ")
                for i in range(6):  # 1.8 s of traffic, every 0.3 s: longer than the timeout
                    await asyncio.sleep(0.3)
                    await ws.send(f"tick {i}")
                    assert await ws.recv() == f"{name}:tick {i}"
                quiet = time.monotonic()
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                waited = time.monotonic() - quiet
            assert 0.9 < waited < 4, waited  # the wheel fires at most 50 ms late; the machine is shared
        finally:
            await chat.stop()
    run(main())


def test_a_server_that_dies_mid_tunnel_closes_the_client(ports, balancer):
    async def main():
        chat = await Chat().start(ports)
        balancer(shopping_cart(ports), certs=True)
        try:
            for port, tls in ((ports["vip_http"], False), (ports["vip_https"], True)):
                async with ws_connect("127.0.0.53", port, tls) as ws:
                    name = (await ws.recv()).removeprefix("hello from ")
                    await ws.send("before")
                    assert await ws.recv() == f"{name}:before"
                    chat.live[name][0].transport.abort()  # the server process dies: a reset
                    started = time.monotonic()
                    with pytest.raises(ConnectionClosed):
                        await ws.recv()
                    assert time.monotonic() - started < 3
                assert ws.close_code == 1006  # no close frame: the connection just ended
        finally:
            await chat.stop()
    run(main())
