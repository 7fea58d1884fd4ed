"""L7 server connections (io.pool.Pool.dial: io.tcp.connect driven by io.flow.Connector)
through a real plain VIP (io/listeners.py) with real loopback backends: a refused
connect is retried on the other rserver and a connect refused twice is a 502 with the
lease given back; `timeout connect` abandons a hanging connect (never early) and closes
its socket; a send-proxy farm's connection opens with the PROXY header once and is
reused by that client only; a server that closes an idle pooled connection is dropped
from the pool and the next request opens a new one; a WebSocket upgrade takes the
server connection over as a byte relay both ways, with half-close.  Every pooled
connection is an io.tcp Transport."""
from __future__ import annotations

import asyncio
import os

import uvloop

from buddylb.app import protocol_factory
from buddylb.io import tcp
from buddylb.io.listeners import ListenerSet
from buddylb.io.runtime import Balancer
from tests.support.faulty import blackhole
from tests.support.net import free_port
from tests.support.onevip import one_vip

VIP_ADDR, WEB1, WEB2 = "127.0.0.100", "127.0.1.11", "127.0.1.12"
CLIENT = "127.0.0.21"
CONNECT_S = 0.3
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


class Backend(asyncio.Protocol):
    """An HTTP/1.1 server on loopback that records each connection's bytes.  By path:
    `/idle-close` answers, then closes the connection 50 ms later (idle, kept alive by
    its answer); `/ws` with `Upgrade: websocket` switches and then echoes every read as
    `echo:<bytes>`, and on the client's EOF writes `bye` and closes; anything else
    answers 200 with the server's name.  One request per read (the tests send so)."""

    def __init__(self, name: bytes, conns: list) -> None:
        self.name = name
        self.conns = conns
        self.got = bytearray()
        self.upgraded = False

    def connection_made(self, transport) -> None:
        self.t = transport
        self.conns.append(self.got)

    def data_received(self, data: bytes) -> None:
        self.got += data
        if self.upgraded:
            self.t.write(b"echo:" + data)
            return
        if b"\r\n\r\n" not in data:
            return  # a PROXY header or the head's first part: the rest follows
        line = data[data.index(b"GET "):].split(b"\r\n", 1)[0]
        if b" /ws " in line and b"upgrade: websocket" in data.lower():
            self.upgraded = True
            self.t.write(SWITCH)
            return
        self.t.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(self.name), self.name))
        if b" /idle-close " in line:
            asyncio.get_running_loop().call_later(0.05, self.t.close)

    def eof_received(self) -> bool:
        if self.upgraded:
            self.t.write(b"bye")
        self.t.close()
        return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_count(balancer: Balancer) -> int:
    return sum(balancer.state.connections(m) for m in balancer.snapshot.contexts["Admin"].farms["web"].members)


def pooled(balancer: Balancer) -> list:
    return [c for conns in balancer.pool.idle.values() for c in conns]


class Front:
    """One L7 VIP served as in production (io/listeners.py), its farm `web` on `servers`."""

    async def start(self, tmp_path, servers: list[tuple[str, int]], extra: str = "") -> "Front":
        self.vip_port = free_port(VIP_ADDR)
        path = tmp_path / "lb.cfg"
        text = one_vip(VIP_ADDR, self.vip_port, servers, http=True, head="timeout connect 300ms\n")
        path.write_text(text.replace("serverfarm host web\n", "serverfarm host web\n" + extra))
        self.balancer = Balancer(path, b"k" * 32)
        self.records: list = []
        self.balancer.access_log = self.records.append
        self.listeners = ListenerSet(self.balancer, protocol_factory(self.balancer))
        snap, cfg = self.balancer.prepare()
        contexts = self.listeners.bind(snap)
        self.balancer.commit(snap, cfg)
        await self.listeners.apply(snap, contexts)
        return self

    async def client(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(VIP_ADDR, self.vip_port, local_addr=(CLIENT, 0))

    async def settle(self) -> None:
        for _ in range(200):  # the last close is a few loop passes behind the client
            if not self.balancer.flows:
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.listeners.stop_accepting()
        await self.listeners.close()
        self.balancer.pool.close_all()
        await asyncio.sleep(0.01)


async def get(reader, writer, path: str = "/") -> bytes:
    """One keep-alive request; the whole response (its body is short and content-length framed)."""
    writer.write(f"GET {path} HTTP/1.1\r\nhost: shop\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


async def ask(front: Front, path: str = "/") -> tuple[bytes, float]:
    """A new client connection, one request, closed: (the response, seconds it took)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    reader, writer = await front.client()
    try:
        return await get(reader, writer, path), loop.time() - t0
    finally:
        writer.close()


async def backend(name: bytes, host: str, conns: list) -> tuple[asyncio.AbstractServer, int]:
    port = free_port(host)
    server = await asyncio.get_running_loop().create_server(lambda: Backend(name, conns), host, port)
    return server, port


def test_a_refused_connect_is_retried_on_the_other_rserver_and_refused_twice_is_a_502(tmp_path):
    async def scenario():
        conns: list = []
        web2, port2 = await backend(b"web2", WEB2, conns)
        front = await Front().start(tmp_path, [(WEB1, free_port(WEB1)), (WEB2, port2)])
        try:
            await ask(front)  # the first request makes the loop's poller and wheel
            served = [await ask(front) for _ in range(2)]  # round robin: one goes to web1 first
            web2.close()  # no more listening; its pooled connection is closed too
            front.balancer.pool.close_all()
            await front.settle()
            await asyncio.sleep(0.05)
            before = open_fds()
            refused = [await ask(front) for _ in range(2)]
            await front.settle()
            return served, refused, before, open_fds(), open_count(front.balancer), front.records
        finally:
            await front.stop()

    served, refused, before, after, opened, records = uvloop.run(scenario())
    assert [r.endswith(b"\r\n\r\nweb2") for r, _ in served] == [True, True]
    assert [r.startswith(b"HTTP/1.1 502 ") for r, _ in refused] == [True, True]
    assert [r.rserver for r in records[1:3]] == ["web2", "web2"] and [r.status for r in records[3:]] == [502, 502]
    assert opened == 0 and after == before  # leases given back, no socket left


def test_a_hanging_connect_times_out_closes_its_socket_and_the_retry_serves(tmp_path):
    async def scenario():
        conns: list = []
        web2, port2 = await backend(b"web2", WEB2, conns)
        with blackhole(WEB1) as dead:
            front = await Front().start(tmp_path, [(WEB1, dead), (WEB2, port2)])
            try:
                await ask(front)  # the first request makes the loop's poller and wheel
                front.balancer.pool.close_all()  # counted without pooled connections, as at the end
                await front.settle()
                await asyncio.sleep(0.05)
                before = open_fds()
                results = [await ask(front) for _ in range(2)]
                await front.settle()
                front.balancer.pool.close_all()
                await asyncio.sleep(0.05)
                return results, before, open_fds(), open_count(front.balancer), front.records
            finally:
                await front.stop()
                web2.close()

    results, before, after, opened, records = uvloop.run(scenario())
    assert [r.endswith(b"\r\n\r\nweb2") for r, _ in results] == [True, True]
    slow, fast = sorted((took for _, took in results), reverse=True)
    assert slow >= CONNECT_S and fast < CONNECT_S  # abandoned at `timeout connect`, never early
    assert after == before and opened == 0  # the abandoned connect's socket is closed
    assert [r.rserver for r in records[-2:]] == ["web2", "web2"]


def test_a_send_proxy_connection_opens_with_the_header_once_and_serves_that_client_only(tmp_path):
    async def scenario():
        conns: list = []
        web1, port1 = await backend(b"web1", WEB1, conns)
        front = await Front().start(tmp_path, [(WEB1, port1)], extra="  send-proxy v1\n")
        try:
            reader, writer = await front.client()
            answers = [await get(reader, writer) for _ in range(3)]
            mine = [(c.target, type(c.transport)) for c in pooled(front.balancer)]
            other = await asyncio.open_connection(VIP_ADDR, front.vip_port, local_addr=("127.0.0.22", 0))
            answers.append(await get(*other))
            writer.close()
            other[1].close()
            return answers, [bytes(c) for c in conns], mine, CLIENT
        finally:
            await front.stop()
            web1.close()

    answers, conns, mine, client = uvloop.run(scenario())
    assert all(a.endswith(b"\r\n\r\nweb1") for a in answers)
    assert len(conns) == 2  # three requests of one client on one connection; the other client's own
    assert conns[0].startswith(f"PROXY TCP4 {client} {VIP_ADDR} ".encode())
    assert conns[0].count(b"PROXY ") == 1 and conns[0].count(b"GET / HTTP/1.1\r\n") == 3
    assert conns[1].startswith(b"PROXY TCP4 127.0.0.22 ") and conns[1].count(b"GET / ") == 1
    assert len(mine) == 1 and mine[0][1] is tcp.Transport
    assert mine[0][0][2] == client  # pooled for that client address (SPEC §2.1)


def test_a_server_closing_an_idle_pooled_connection_leaves_the_pool_and_the_next_request_reconnects(tmp_path):
    async def scenario():
        conns: list = []
        web1, port1 = await backend(b"web1", WEB1, conns)
        front = await Front().start(tmp_path, [(WEB1, port1)])
        try:
            reader, writer = await front.client()
            first = await get(reader, writer, "/idle-close")
            idle = pooled(front.balancer)
            kinds = [type(c.transport) for c in idle]
            for _ in range(100):  # the server closes 50 ms after its answer
                await asyncio.sleep(0.01)
                if not pooled(front.balancer):
                    break
            after_close = pooled(front.balancer)
            second = await get(reader, writer)
            writer.close()
            return first, second, idle, kinds, after_close, len(conns), front.records
        finally:
            await front.stop()
            web1.close()

    first, second, idle, kinds, after_close, connections, records = uvloop.run(scenario())
    assert first.endswith(b"web1") and second.endswith(b"web1")
    assert kinds == [tcp.Transport]
    assert after_close == [] and not idle[0].alive and idle[0].transport is None
    assert connections == 2  # the second request on a new server connection
    assert [r.status for r in records] == [200, 200] and all(r.error is None for r in records)


def test_a_websocket_upgrade_relays_both_ways_over_the_server_connection_and_half_closes(tmp_path):
    async def scenario():
        conns: list = []
        web1, port1 = await backend(b"web1", WEB1, conns)
        front = await Front().start(tmp_path, [(WEB1, port1)])
        try:
            reader, writer = await front.client()
            writer.write(b"GET /ws HTTP/1.1\r\nhost: shop\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
                         b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            echoes = []
            for word in (b"one", b"two"):
                writer.write(word)
                echoes.append(await asyncio.wait_for(reader.readexactly(5 + len(word)), 5))
            writer.write_eof()  # half-close: the server still answers
            rest = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await front.settle()
            return head, echoes, rest, open_count(front.balancer), pooled(front.balancer), front.records
        finally:
            await front.stop()
            web1.close()

    head, echoes, rest, opened, idle, records = uvloop.run(scenario())
    assert head.startswith(b"HTTP/1.1 101 ") and b"upgrade: websocket" in head.lower()
    assert echoes == [b"echo:one", b"echo:two"] and rest == b"bye"
    assert opened == 0 and idle == []  # the tunnel's server connection is never pooled
    assert [r.status for r in records] == [101] and records[0].bytes_in > 6 and records[0].bytes_out > len(SWITCH)
