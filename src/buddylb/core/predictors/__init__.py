"""Predictors: how a farm picks an rserver among candidates (SPEC §2.1 `predictor`).

One module per algorithm behind one small table (HAProxy's lb_* files): each exposes
`choose(farm, candidates, state, flow_hint) -> Member`. Candidates are already filtered
for availability by the caller; weights apply to every predictor.
"""
from __future__ import annotations

from typing import Callable, Sequence

from buddylb.core.predictors import hashing, leastconns, roundrobin
from buddylb.core.snapshot import Farm, Member
from buddylb.core.state import RuntimeState

Chooser = Callable[[Farm, Sequence[Member], RuntimeState, "tuple[str, str]"], Member]

PREDICTORS: dict[str, Chooser] = {
    "roundrobin": roundrobin.choose,
    "leastconns": leastconns.choose,
    "hash": hashing.choose,
}


def choose(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member | None:
    """Pick one of `candidates` with the farm's predictor; `addrs` = (source, destination)."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    return PREDICTORS[farm.predictor.kind](farm, candidates, state, addrs)
