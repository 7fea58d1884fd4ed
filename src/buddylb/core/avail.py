"""Which rservers may take a connection now (SPEC §3, §2.1): the availability questions
`core.decide` asks of the runtime state on every decision, and rule 4's buddy candidates.

A module of its own (compiled: avail.pxd, whose C functions `core.decide` cimports) so
that decide() keeps to the rules; `core.decide` re-exports `available_members`.  A
`state` is a `core.state.RuntimeState` (C calls when compiled) or anything answering
`available` and `draining` (core.impact's what-if views, called as Python).  Rule 4 as decide()'s Plan
holds it (`Buddy4`, `_buddy_rows`) is made here too.
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Context, Farm, Member, Scope
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


class Buddy4:
    """Rule 4 for one (last farm, member byte) of a Plan: the buddy group of that rserver,
    its members in the plan's primary farm and rule 4's two texts (Plan.b4)."""

    __slots__ = ("group", "members", "kept", "pick")

    def __init__(self, group: str, members: tuple, kept: str, pick: str) -> None:
        self.group = group
        self.members = members
        self.kept = kept
        self.pick = pick


def _buddy_rows(ctx: Context, scope: Scope, names: list, farm0: Farm, fi0: int) -> list | None:
    """Plan.b4: for each farm of the scope but the primary one and each member byte there,
    what resolve() reads for rule 4 in `farm0` (the group of that rserver, the group's
    members in farm0, the texts); None where that rserver is in no group."""
    rows: list = []
    found = False
    for fi, farm_name in enumerate(scope.farms):
        row: list = []
        if fi != fi0:
            for name in names[fi]:
                group = ctx.buddy_of.get((farm_name, name)) if name is not None else None
                if group is not None:
                    found = True
                    row.append(Buddy4(group, tuple(ctx.buddy_members.get((group, farm0.name), ())),
                                      _rule4(group, True), _rule4(group, False)))
                else:
                    row.append(None)
        rows.append(row)
    return rows if found else None


_RULE4_KEPT: dict[str, str] = {}
_RULE4_PICK: dict[str, str] = {}


def _rule4(group: str, remembered: bool) -> str:
    """Rule 4's text, made once per buddy group (a format per decision was measurable)."""
    texts = _RULE4_KEPT if remembered else _RULE4_PICK
    text = texts.get(group)
    if text is None:
        if len(texts) > 1024:  # groups come from configurations: reloads may rename them
            texts.clear()
        text = texts[group] = (f"4: remembered rserver in buddy group {group}" if remembered
                               else f"4: predictor among buddy group {group}")
    return text
