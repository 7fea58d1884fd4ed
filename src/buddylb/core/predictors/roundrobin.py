"""Weighted round-robin: nginx's smooth weighted round-robin over the candidates.

Smooth WRR spreads a weight-3/weight-1 pair as a,a,b,a rather than a,a,a,b, and it works
over any subset of the farm (buddy candidates, survivors of a probe failure) because the
per-member running weights are kept by name in RuntimeState.
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Farm, Member
from buddylb.core.state import RuntimeState


def choose(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member:
    current = state.swrr.get(farm.key)
    if current is None:
        current = state.swrr[farm.key] = {}
    total = 0
    best: Member | None = None
    best_w = 0
    for m in candidates:
        w = current.get(m.rserver, 0) + m.weight
        current[m.rserver] = w
        total += m.weight
        if best is None or w > best_w:
            best, best_w = m, w
    assert best is not None
    current[best.rserver] = best_w - total
    return best
