"""How a plain VIP is served (io/listeners.py): by io/tcp.py's Server, below uvloop, L4
or L7; a reload that turns an L4 VIP into an L7 one and back applies to the next
connection (the accept loop is restarted, the protocol follows the snapshot), and no
connection is left open.  A real loop with loopback sockets."""
from __future__ import annotations

import asyncio

import uvloop

from buddylb.app import protocol_factory
from buddylb.io import accept
from buddylb.io.listeners import ListenerSet
from buddylb.io.runtime import Balancer
from tests.support.net import free_port
from tests.support.onevip import one_vip

VIP_ADDR, SERVER_ADDR = "127.0.0.100", "127.0.1.11"
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


def config(vip_port: int, server_port: int, http: bool) -> str:
    return one_vip(VIP_ADDR, vip_port, [(SERVER_ADDR, server_port)], http=http)


async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers one request head with a fixed response and closes; it says whether the
    head it got was forwarded by L7 (X-Forwarded-For added) or relayed byte for byte."""
    head = await reader.readuntil(b"\r\n\r\n")
    forwarded = b"x-forwarded-for" in head.lower()
    writer.write(ANSWER.replace(b"ok", b"L7" if forwarded else b"L4"))
    await writer.drain()
    writer.close()


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection(VIP_ADDR, port)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data.rsplit(b"\r\n\r\n", 1)[-1]


async def scenario(tmp_path) -> list:
    vip_port, server_port = free_port(VIP_ADDR), free_port(SERVER_ADDR)
    path = tmp_path / "lb.cfg"
    path.write_text(config(vip_port, server_port, http=False))
    balancer = Balancer(path, b"k" * 32)
    server = await asyncio.start_server(backend, SERVER_ADDR, server_port)
    listeners = ListenerSet(balancer, protocol_factory(balancer))
    seen = []
    try:
        for http in (False, True, False):
            path.write_text(config(vip_port, server_port, http))
            snap, cfg = balancer.prepare()
            contexts = listeners.bind(snap)
            balancer.commit(snap, cfg)
            await listeners.apply(snap, contexts)
            served_raw = isinstance(listeners.listeners[(VIP_ADDR, vip_port)].server, accept.Server)
            seen.append((http, served_raw, await ask(vip_port)))
        for _ in range(200):  # the last close is a few loop passes behind the client
            if not balancer.flows:
                break
            await asyncio.sleep(0.01)
        seen.append(len(balancer.flows))
    finally:
        listeners.stop_accepting()
        await listeners.close()
        server.close()
    return seen


def test_plain_vip_is_served_below_uvloop_and_follows_a_reload_between_l4_and_l7(tmp_path):
    seen = uvloop.run(scenario(tmp_path))
    assert seen == [(False, True, b"L4"), (True, True, b"L7"), (False, True, b"L4"), 0]
