"""Weighted round-robin: nginx's smooth weighted round-robin over the candidates.

Smooth WRR spreads a weight-3/weight-1 pair as a,a,b,a rather than a,a,a,b, and it works
over any subset of the farm (buddy candidates, survivors of a probe failure) because the
per-member running weights are kept by name in RuntimeState.

Compiled (roundrobin.pxd) the weights are C integers and a RuntimeState's `swrr` is read
as a C field: every new client of a roundrobin farm goes through here (issue 11's insert
rate; the untyped loop cost about as much as the sticky table's insert).
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Farm, Member
from buddylb.core.state import RuntimeState


def choose(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member:
    if type(state) is RuntimeState:
        rs = state
        swrr = rs.swrr
    else:  # a stand-in state (core.impact's views)
        swrr = state.swrr
    current = swrr.get(farm.key)
    if current is None:
        current = swrr[farm.key] = {}
    total = 0
    best: Member | None = None
    best_name = ""
    best_w = 0
    for m in candidates:
        name = m.rserver
        weight = m.weight
        w = current.get(name, 0) + weight
        current[name] = w
        total += weight
        if best is None or w > best_w:
            best, best_w, best_name = m, w, name
    assert best is not None
    current[best_name] = best_w - total
    return best
