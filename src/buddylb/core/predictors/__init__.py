"""Predictors: how a farm picks an rserver among candidates (SPEC §2.1 `predictor`).

One module per algorithm behind one small table (HAProxy's lb_* files): each exposes
`choose(farm, candidates, state, flow_hint) -> Member`. Candidates are already filtered
for availability by the caller; weights apply to every predictor.

Compiled (__init__.pxd) `choose` is a C function that `core.decide` cimports, and it
calls the roundrobin chooser, the default predictor, in C: every new client goes
through here (issue 11's insert rate).
"""
from __future__ import annotations

from typing import Callable, Sequence

from buddylb.core.predictors import hashing, leastconns, roundrobin
from buddylb.core.predictors.roundrobin import choose as _roundrobin
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
    kind = farm.predictor.kind
    if kind == "roundrobin":  # PREDICTORS' entry, called in C when compiled
        return _roundrobin(farm, candidates, state, addrs)
    return PREDICTORS[kind](farm, candidates, state, addrs)


def peek(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member | None:
    """What `choose` would pick right now, leaving the predictor's cursors as they were.

    The explain view (SPEC §3: what it says is what the next request gets) asks this;
    it runs the real chooser and puts back the farm's round-robin weights and
    least-connections cursor, the only state a chooser moves."""
    swrr = state.swrr.get(farm.key)
    saved_swrr = None if swrr is None else dict(swrr)
    saved_cursor = state.cursors.get(farm.key)
    try:
        return choose(farm, candidates, state, addrs)
    finally:
        if saved_swrr is None:
            state.swrr.pop(farm.key, None)
        else:
            state.swrr[farm.key] = saved_swrr
        if saved_cursor is None:
            state.cursors.pop(farm.key, None)
        else:
            state.cursors[farm.key] = saved_cursor
