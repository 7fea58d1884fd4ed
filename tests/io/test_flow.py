"""io.flow on a real Balancer and event loop, without sockets: the Lease is released
once, the rule-6 queue is woken by a release (no polling), a refused connect is retried
once on another rserver and then fails with the lease given back, a connect past `timeout
connect` is cancelled (the Connector's `open_conn` answered by the test; the real
sockets are in test_l4_connect and test_l7_connect)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from buddylb.core.decide import Flow
from buddylb.io import flow
from buddylb.io.runtime import Balancer

CONFIG = """timeout queue 5
rserver host web1
  ip address 127.0.1.11
  conn-limit max 1
  inservice
rserver host web2
  ip address 127.0.1.12
  conn-limit max 1
  inservice
serverfarm host web
  rserver web1 8080
    inservice
  rserver web2 8080
    inservice
policy-map type loadbalance http first-match web-policy
  class class-default
    serverfarm web
class-map match-all http-vip
  2 match virtual-address 127.0.0.100 tcp eq 8000
policy-map multi-match int
  class http-vip
    loadbalance vip inservice
    loadbalance policy web-policy
service-policy input int
"""
VIP = ("127.0.0.100", 8000)


@pytest.fixture
def balancer(tmp_path: Path) -> Balancer:
    path = tmp_path / "lb.cfg"
    path.write_text(CONFIG)
    return Balancer(path, b"s" * 32)


def open_count(b: Balancer) -> int:
    return sum(b.state.connections(m) for m in b.snapshot.contexts["Admin"].farms["web"].members)


def decide(b: Balancer):
    vip = b.snapshot.vips[VIP]
    return flow.decide_now(b, vip, Flow("127.0.0.9", vip.address), b.snapshot)


def test_a_lease_is_released_once_whoever_releases_it(balancer):
    d, final = decide(balancer)
    assert final and d.member is not None and open_count(balancer) == 1
    lease = flow.Lease(balancer, d)
    lease.release()
    lease.release()  # the response end and the client leaving, both
    assert open_count(balancer) == 0


def test_the_queue_is_woken_by_a_release_not_by_polling(balancer):
    async def scenario() -> None:
        first, second = decide(balancer)[0], decide(balancer)[0]  # both rservers at their limit
        held = [flow.Lease(balancer, first), flow.Lease(balancer, second)]
        vip = balancer.snapshot.vips[VIP]
        d, final = decide(balancer)
        assert not final and d.member is None and d.queue
        waiting = asyncio.get_running_loop().create_task(
            flow.settle(balancer, vip, Flow("127.0.0.10", vip.address), balancer.snapshot, d))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # queued, nothing free
        held[0].release()
        for _ in range(5):  # a few loop turns, far less than any polling interval
            await asyncio.sleep(0)
        assert waiting.done()
        got = waiting.result()
        assert got.member is not None and got.member.rserver == first.member.rserver
        flow.Lease(balancer, got).release()
        held[1].release()
        assert open_count(balancer) == 0 and not balancer.queued

    uvloop.run(scenario())


def test_the_queue_gives_up_after_timeout_queue(balancer, tmp_path):
    path = tmp_path / "short.cfg"
    path.write_text(CONFIG.replace("timeout queue 5", "timeout queue 0.2"))
    b = Balancer(path, b"s" * 32)

    async def scenario() -> None:
        held = [flow.Lease(b, decide(b)[0]), flow.Lease(b, decide(b)[0])]
        vip = b.snapshot.vips[VIP]
        d, _ = decide(b)
        got = await flow.settle(b, vip, Flow("127.0.0.10", vip.address), b.snapshot, d)
        assert got.member is None and not b.queued
        for lease in held:
            lease.release()

    uvloop.run(scenario())


class Dial:
    """A connect in the Connector's form (io.tcp.connect, io.pool.Pool.dial): started at
    once, answered later by the test's loop, cancelled by `abort()`."""

    def __init__(self, address: str, aborted: list[str]) -> None:
        self.address = address
        self.aborted = aborted

    def abort(self) -> None:
        self.aborted.append(self.address)


def test_a_refused_connect_is_retried_once_on_another_rserver_then_fails(balancer):
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        vip = balancer.snapshot.vips[VIP]
        f = Flow("127.0.0.9", vip.address)
        tried: list[str] = []

        def refuse(address: str, port: int, answer):
            tried.append(address)
            loop.call_soon(answer, None, ConnectionRefusedError(111, "refused"))
            return Dial(address, [])

        async def run(lease, open_conn):
            answer = loop.create_future()
            flow.Connector(balancer, lease, f, 1.0, open_conn, lambda _lease, made: answer.set_result(made))
            return await answer

        d, _ = decide(balancer)
        lease = flow.Lease(balancer, d)
        assert await run(lease, refuse) is None
        assert sorted(tried) == ["127.0.1.11", "127.0.1.12"] and lease.released
        assert open_count(balancer) == 0

        def second_works(address: str, port: int, answer):
            if address == d.address:
                loop.call_soon(answer, None, ConnectionRefusedError(111, "refused"))
            else:
                loop.call_soon(answer, address, None)
            return Dial(address, [])

        d, _ = decide(balancer)
        lease = flow.Lease(balancer, d)
        assert await run(lease, second_works) != d.address
        assert lease.decision.member.rserver != d.member.rserver and open_count(balancer) == 1
        lease.release()
        assert open_count(balancer) == 0

        def no_descriptor(address: str, port: int, answer):  # raised at once: nothing opened
            tried.append(address)
            raise OSError(24, "too many open files")

        tried.clear()
        d, _ = decide(balancer)
        lease = flow.Lease(balancer, d)
        assert await run(lease, no_descriptor) is None
        assert sorted(tried) == ["127.0.1.11", "127.0.1.12"] and lease.released

    uvloop.run(scenario())


def test_a_connect_past_its_deadline_is_cancelled_and_retried_then_fails(balancer):
    """`timeout connect` rides the timer wheel: a hanging connect is cancelled (never
    early), the retry gets a deadline of its own, and the lease is given back."""
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        vip = balancer.snapshot.vips[VIP]
        f = Flow("127.0.0.9", vip.address)
        cancelled: list[str] = []

        def hang(address: str, port: int, answer):
            return Dial(address, cancelled)

        d, _ = decide(balancer)
        lease = flow.Lease(balancer, d)
        answer = loop.create_future()
        t0 = loop.time()
        flow.Connector(balancer, lease, f, 0.1, hang, lambda _lease, made: answer.set_result(made))
        assert await asyncio.wait_for(answer, 5) is None
        assert loop.time() - t0 >= 0.2  # two deadlines of 0.1 s, neither early
        assert sorted(cancelled) == ["127.0.1.11", "127.0.1.12"] and lease.released
        assert open_count(balancer) == 0

    uvloop.run(scenario())


def test_a_connector_cancelled_by_the_client_leaving_reports_nothing(balancer):
    async def scenario() -> None:
        vip = balancer.snapshot.vips[VIP]
        cancelled: list[str] = []
        answers: list = []
        late: list = []

        def hang(address: str, port: int, answer):
            late.append(answer)  # a connect that would answer after the cancel
            return Dial(address, cancelled)

        d, _ = decide(balancer)
        lease = flow.Lease(balancer, d)
        owner: set = set()
        c = flow.Connector(balancer, lease, Flow("127.0.0.9", vip.address), 0.1, hang,
                           lambda _lease, made: answers.append(made), owner)
        assert owner == {c}
        for item in owner:  # as connection_lost does: cancelling must not change the set
            item.cancel()
        assert cancelled == [d.address]
        late[0]("made", None)  # answered anyway: ignored
        await asyncio.sleep(0.3)  # past the deadline: nothing fires
        assert answers == [] and not lease.released and cancelled == [d.address]
        lease.release()
        assert open_count(balancer) == 0

    uvloop.run(scenario())
