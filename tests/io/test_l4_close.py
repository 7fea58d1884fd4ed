"""The L4 relay's close path on a real loop with real loopback sockets: a server that
half-closes after its answer and lingers until the client's EOF (nginx answering
`Connection: close`), then the client's own EOF.  Both directions are relayed, and once
both have ended both sockets are closed and the connection's bookkeeping is gone
(flows, the lease's open count, the wheel)."""
from __future__ import annotations

import asyncio
import gc

import uvloop

from buddylb.io import tcp
from buddylb.io.l4 import L4Client, ServerSide
from buddylb.io.runtime import Balancer
from tests.support.net import free_port
from tests.support.onevip import one_vip, ping

VIP_ADDR, SERVER_ADDR = "127.0.0.100", "127.0.1.11"
N = 20


class Lingering(asyncio.Protocol):
    """Answers the first bytes, half-closes, and closes only on the client's EOF."""

    eofs = 0

    def connection_made(self, transport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.t.write(b"answer:" + data)
        self.t.write_eof()

    def eof_received(self) -> bool:
        Lingering.eofs += 1
        return False  # close


def config(vip_port: int, server_port: int) -> str:
    return one_vip(VIP_ADDR, vip_port, [(SERVER_ADDR, server_port)], sticky=True)


async def one(loop, vip_port: int) -> bytes:
    return await ping(loop, VIP_ADDR, vip_port, eof_after=True)  # our EOF after the server's


async def scenario(tmp_path) -> tuple[list[bytes], int, int, int, bool]:
    loop = asyncio.get_running_loop()
    vip_port, server_port = free_port(VIP_ADDR), free_port(SERVER_ADDR)
    path = tmp_path / "lb.cfg"
    path.write_text(config(vip_port, server_port))
    balancer = Balancer(path, b"k" * 32)
    backend = await loop.create_server(Lingering, SERVER_ADDR, server_port)
    front = await loop.create_server(lambda: L4Client(balancer, (VIP_ADDR, vip_port)), VIP_ADDR, vip_port)
    Lingering.eofs = 0
    try:
        answers = [await one(loop, vip_port) for _ in range(N)]
        for _ in range(200):  # the last close is a few loop passes behind the client
            if not balancer.flows and Lingering.eofs == N:
                break
            await asyncio.sleep(0.01)
        member = balancer.snapshot.contexts["Admin"].farms["web"].members[0]
        armed = balancer.wheel is not None and any(balancer.wheel.slots.values())
        return answers, len(balancer.flows), Lingering.eofs, balancer.state.connections(member), armed
    finally:
        front.close()
        backend.close()


def test_both_eofs_close_both_sockets_and_free_everything(tmp_path):
    answers, flows, eofs, open_conns, armed = uvloop.run(scenario(tmp_path))
    assert answers == [b"answer:ping"] * N  # the server's half-close reached the client as EOF
    assert eofs == N  # each client's EOF reached the server (it then closed)
    assert flows == 0 and open_conns == 0 and not armed


def test_a_finished_connection_leaves_no_cycle_for_the_gc(tmp_path):
    """Every object of a finished L4 connection is freed by reference counting: none
    waits for the cyclic GC (the client and server protocols referred to each other,
    which kept ~12 objects per connection for it: issue 10, L4 new connection)."""
    async def collected() -> list[str]:
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            answers, flows, *_ = await scenario(tmp_path)
            assert answers == [b"answer:ping"] * N and flows == 0
            gc.collect()
            return sorted({type(o).__name__ for o in gc.garbage if type(o) in (L4Client, ServerSide, tcp.Transport)})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    assert uvloop.run(collected()) == []
