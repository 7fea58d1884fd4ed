"""Least connections, weighted: the lowest open-connections-per-weight wins.

Ties break round-robin (as HAProxy's leastconn does) so idle servers share new clients
instead of the first one in the list taking all of them.  ACE `slowstart T`: an rserver
back from a failed probe counts with only `ramp` (0..1, raised by the prober over T
seconds) of its weight, so it is not flooded for holding no connection yet.
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Farm, Member
from buddylb.core.state import RuntimeState


def choose(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member:
    loads = [c.conns / (m.weight * c.ramp) for m, c in ((m, state.cell(m)) for m in candidates)]
    best_load = min(loads)
    tied = [m for m, load in zip(candidates, loads) if load == best_load]
    cursor = state.cursors.get(farm.key, -1)
    # the first tied member after the cursor, in farm order
    after = [m for m in tied if m.index > cursor]
    pick = after[0] if after else tied[0]
    state.cursors[farm.key] = pick.index
    return pick
