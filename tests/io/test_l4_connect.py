"""The L4 relay's server connect (io.tcp.connect, a callback driven by io.flow.Connector)
on a real loop with real loopback sockets: `timeout connect` abandons a connect that
hangs (never early) and closes its socket, the one retry on the other rserver serves the
client, a connect refused twice closes the client with the lease given back, and a
client that leaves while its connect is under way leaves no socket behind."""
from __future__ import annotations

import asyncio
import os
import socket
import struct

import uvloop

from buddylb.io import tcp
from buddylb.io.l4 import L4Client
from buddylb.io.runtime import Balancer
from tests.support.faulty import blackhole
from tests.support.net import free_port
from tests.support.onevip import one_vip, ping

VIP_ADDR, WEB1, WEB2 = "127.0.0.100", "127.0.1.11", "127.0.1.12"
CONNECT_S = 0.3


class Answer(asyncio.Protocol):
    """Answers the first bytes and closes."""

    def connection_made(self, transport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.t.write(b"answer:" + data)
        self.t.close()


def config(vip_port: int, port1: int, port2: int) -> str:
    return one_vip(VIP_ADDR, vip_port, [(WEB1, port1), (WEB2, port2)], head="timeout connect 300ms\n")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def exchange(loop, vip_port: int) -> tuple[bytes, float]:
    """One client: send, read until EOF; (what came back, seconds it took)."""
    t0 = loop.time()
    data = await ping(loop, VIP_ADDR, vip_port)
    return data, loop.time() - t0


async def settle(balancer: Balancer) -> None:
    for _ in range(200):  # the last close is a few loop passes behind the client
        if not balancer.flows:
            return
        await asyncio.sleep(0.01)


def open_count(balancer: Balancer) -> int:
    return sum(balancer.state.connections(m) for m in balancer.snapshot.contexts["Admin"].farms["web"].members)


async def front(tmp_path, port1: int, port2: int):
    loop = asyncio.get_running_loop()
    vip_port = free_port(VIP_ADDR)
    path = tmp_path / "lb.cfg"
    path.write_text(config(vip_port, port1, port2))
    balancer = Balancer(path, b"k" * 32)
    records: list = []
    balancer.access_log = records.append
    server = await loop.create_server(lambda: L4Client(balancer, (VIP_ADDR, vip_port)), VIP_ADDR, vip_port)
    return balancer, server, vip_port, records


def test_a_hanging_connect_times_out_closes_its_socket_and_the_retry_serves(tmp_path):
    async def scenario():
        loop = asyncio.get_running_loop()
        port2 = free_port(WEB2)
        backend = await loop.create_server(Answer, WEB2, port2)
        with blackhole(WEB1) as dead:
            balancer, server, vip_port, records = await front(tmp_path, dead, port2)
            try:
                await exchange(loop, vip_port)  # the first connection makes the loop's poller and wheel
                await settle(balancer)
                before = open_fds()
                # round robin: of two clients, one is sent to the blackholed web1 first
                results = [await exchange(loop, vip_port) for _ in range(2)]
                await settle(balancer)
                return results, before, open_fds(), len(balancer.flows), open_count(balancer), records
            finally:
                server.close()
                backend.close()

    results, before, after, flows, opened, records = uvloop.run(scenario())
    assert [data for data, _ in results] == [b"answer:ping"] * 2
    slow, fast = sorted((took for _, took in results), reverse=True)
    assert slow >= CONNECT_S and fast < CONNECT_S  # abandoned at `timeout connect`, never early
    assert after == before  # the abandoned connect's socket is closed
    assert flows == 0 and opened == 0
    assert [r.rserver for r in records[-2:]] == ["web2", "web2"]


def test_a_connect_refused_twice_closes_the_client_and_gives_the_lease_back(tmp_path):
    async def scenario():
        loop = asyncio.get_running_loop()
        balancer, server, vip_port, records = await front(tmp_path, free_port(WEB1), free_port(WEB2))
        try:
            answer = await exchange(loop, vip_port)
            await settle(balancer)
            before = open_fds()
            answers = [await exchange(loop, vip_port) for _ in range(3)]
            await settle(balancer)
            return [answer, *answers], before, open_fds(), len(balancer.flows), open_count(balancer), records
        finally:
            server.close()

    answers, before, after, flows, opened, records = uvloop.run(scenario())
    assert [data for data, _ in answers] == [b""] * 4  # closed, nothing relayed
    assert after == before and flows == 0 and opened == 0
    assert [r.status for r in records] == ["connect_failed"] * 4


def test_a_client_leaving_while_its_connect_hangs_leaves_no_socket(tmp_path):
    async def scenario():
        loop = asyncio.get_running_loop()
        with blackhole(WEB1) as dead1, blackhole(WEB2) as dead2:
            balancer, server, vip_port, records = await front(tmp_path, dead1, dead2)
            try:
                tcp.shared_poller(loop)  # the loop's epoll descriptor, made before counting
                before = open_fds()
                sock = socket.socket()
                sock.setblocking(False)
                await loop.sock_connect(sock, (VIP_ADDR, vip_port))
                await asyncio.sleep(CONNECT_S / 3)  # connecting to a blackholed rserver now
                during = open_fds()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # a reset: the client is gone (a FIN would leave the server's half open)
                await settle(balancer)
                await asyncio.sleep(CONNECT_S * 3)  # past both deadlines: nothing may fire
                return before, during, open_fds(), len(balancer.flows), open_count(balancer), records
            finally:
                server.close()

    before, during, after, flows, opened, records = uvloop.run(scenario())
    assert during == before + 3  # the test's socket, the accepted one, the connect's
    assert after == before and flows == 0 and opened == 0
    assert [r.status for r in records][-1] == "closed"
