"""Which rservers may take a connection now (SPEC §3, §2.1): the availability questions
`core.decide` asks of the runtime state on every decision, and rule 4's buddy candidates.

A module of its own (compiled: avail.pxd, whose C functions `core.decide` cimports) so
that decide() keeps to the rules; `core.decide` re-exports `available_members`.  A
`state` is a `core.state.RuntimeState` (C calls when compiled) or anything answering
`available` and `draining` (core.impact's what-if views, called as Python).
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Context, Farm, Member
from buddylb.core.state import RuntimeState


def _available(state: RuntimeState, m: Member) -> bool:
    """`state.available(m)`; compiled, a C call when `state` is a RuntimeState (anything
    else that answers `available`, such as core.impact's views, is called as Python)."""
    if type(state) is RuntimeState:
        rs = state
        return rs.available(m)
    return state.available(m)


def _opened(state: RuntimeState, m: Member) -> None:
    """`state.opened(m)`, a C call on a RuntimeState when compiled (see _available)."""
    if type(state) is RuntimeState:
        rs = state
        rs.opened(m)
    else:
        state.opened(m)


def available_members(farm: Farm, state: RuntimeState) -> tuple[Member, ...]:
    """What the predictor may pick from: available members but draining ones; backup
    members only when no primary may be picked (SPEC §2.1; a farm of draining primaries
    sends its new clients to the backups, as HAProxy does with weight-0 servers)."""
    primaries = tuple([m for m in farm.primaries if _available(state, m)])
    if state.draining:
        primaries = _undrained(primaries, state.draining)
    if primaries or not farm.backups:
        return primaries
    backups = tuple([m for m in farm.backups if _available(state, m)])
    return _undrained(backups, state.draining) if state.draining else backups


def _undrained(members: Sequence[Member], draining: set) -> tuple[Member, ...]:
    """`members` without those whose host drains (core.state: they take no new client)."""
    return tuple([m for m in members if m.host_key not in draining])


def _buddies(ctx: Context, state: RuntimeState, group: str, farm: Farm) -> list[Member]:
    """Rule 4's candidates: available members of `group` in `farm`, backups only when no
    primary of the farm is available."""
    return _buddies_in(state, ctx.buddy_members.get((group, farm.name), ()), farm)


def _buddies_in(state: RuntimeState, members: Sequence[Member], farm: Farm) -> list[Member]:
    """`_buddies` from the group's members in `farm` (core.decide's Plan holds them per
    last farm and member byte, so a buddy decision skips the two keyed lookups).  (Loops,
    not generators: compiled, this is a C function, which may hold no closure.)"""
    buddies = []
    backup = False
    for m in members:
        if _available(state, m):
            buddies.append(m)
            backup = backup or m.backup
    if backup:
        for m in farm.primaries:  # the first available primary decides, as any() did
            if _available(state, m):
                buddies = [b for b in buddies if not b.backup]
                break
    return buddies
