"""`predictor leastconns slowstart T` (ACE): a recovered rserver counts with only part of
its weight while it ramps up, so it is not flooded for holding no connection yet."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from buddylb.io.probes import RAMP_FLOOR, Prober
from tests.core.engine import Engine

CONFIG = """\
rserver host a
  ip address 127.0.1.1
  inservice
rserver host b
  ip address 127.0.1.2
  inservice
serverfarm host web
  predictor leastconns slowstart 30
  rserver a 80
    inservice
  rserver b 80
    inservice
class-map match-all v
  2 match virtual-address 127.0.0.100 tcp eq 80
policy-map type loadbalance first-match lb
  class class-default
    serverfarm web
policy-map multi-match pm
  class v
    loadbalance vip inservice
    loadbalance policy lb
service-policy input pm
"""
VIP = ("127.0.0.100", 80)


def test_a_ramping_rserver_takes_a_share_of_its_weight() -> None:
    e = Engine.from_text(CONFIG)
    assert e.snap.contexts["Admin"].farms["web"].predictor.slowstart_s == 30.0
    held = [e.connect(f"127.0.0.{10 + n}", VIP) for n in range(10)]  # 5 each (ties round robin)
    assert sorted(d.member.rserver for d in held) == ["a"] * 5 + ["b"] * 5
    for d in [d for d in held if d.member.rserver == "b"]:
        e.close(d)  # b restarts empty...
    b = e.snap.contexts["Admin"].farms["web"].by_rserver["b"]
    e.state.cell(b).ramp = 0.1  # ...and ramps up
    got = [e.connect(f"127.0.1.{n}", VIP).member.rserver for n in range(6)]
    # b (0 conns) first; then b's 1 conn weighs 1/(8*0.1) = 1.25, as much as 10 of a's
    assert got == ["b", "a", "a", "a", "a", "a"], got
    e.state.cell(b).ramp = 1.0
    more = [e.connect(f"127.0.2.{n}", VIP).member.rserver for n in range(6)]
    assert more.count("b") >= 3  # at full weight it catches up


def test_the_prober_ramps_from_the_floor_to_full_weight() -> None:
    e = Engine.from_text(CONFIG)
    b = e.snap.contexts["Admin"].farms["web"].by_rserver["b"]
    cell = e.state.cell(b)

    async def go() -> list[float]:
        prober = Prober(SimpleNamespace(state=e.state))  # type: ignore[arg-type]
        prober._ramp(b.key, 0.3)
        seen = [cell.ramp]
        await asyncio.sleep(0.15)
        seen.append(cell.ramp)
        await asyncio.sleep(0.3)
        seen.append(cell.ramp)
        return seen

    first, middle, last = asyncio.run(go())
    assert first == RAMP_FLOOR and RAMP_FLOOR < middle < 1.0 and last == 1.0
