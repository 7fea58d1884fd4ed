"""Which rservers may take a connection now (SPEC §3, §2.1): the availability questions
`core.decide` asks of the runtime state on every decision, and rule 4's buddy candidates.

A module of its own (compiled: avail.pxd, whose C functions `core.decide` cimports) so
that decide() keeps to the rules; `core.decide` re-exports `available_members`.  A
`state` is a `core.state.RuntimeState` (C calls when compiled) or anything answering
`available` and `draining` (core.impact's what-if views, called as Python).  Rule 4 as decide()'s Plan
holds it (`Buddy4`, `_buddy_rows`) is made here too, and the Plan's members (`Pick`).
"""
from __future__ import annotations

from typing import Sequence

from buddylb.core.snapshot import Context, Farm, Member, Scope
from buddylb.core.state import MemberCell, RuntimeState


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


def only_limited(state: RuntimeState, farms: Sequence[Farm]) -> bool:
    """Rule 6's queue: some member would be available but for its connection limit."""
    return any(state.only_limited(m) for f in farms for m in f.members)


def _undrained(members: Sequence[Member], draining: set) -> tuple[Member, ...]:
    """`members` without those whose host drains (core.state: they take no new client)."""
    return tuple([m for m in members if m.host_key not in draining])


def _buddies(ctx: Context, state: RuntimeState, group: str, farm: Farm) -> list[Member]:
    """Rule 4's candidates: available members of `group` in `farm`, backups only when no
    primary of the farm is available (decide()'s Plan reads the same from its Picks:
    `_picks_in`).  (Loops, not generators: compiled, this is a C function, which may hold
    no closure.)"""
    buddies = []
    backup = False
    for m in ctx.buddy_members.get((group, farm.name), ()):
        if _available(state, m):
            buddies.append(m)
            backup = backup or m.backup
    if backup:
        for m in farm.primaries:  # the first available primary decides, as any() did
            if _available(state, m):
                buddies = [b for b in buddies if not b.backup]
                break
    return buddies


class Pick:
    """One member of a decide() Plan's primary farm as its fast paths read it: the Member,
    the two facts of its configuration that availability reads (fixed for a snapshot),
    its member byte in the sticky table (`mi`, 0: not there) and its runtime cell once
    bound.  Compiled, availability and the connection count are then C field reads, not
    three attribute lookups on the frozen Member (issue 11)."""

    __slots__ = ("member", "inservice", "limit", "mi", "cell")

    def __init__(self, member: Member, mi: int) -> None:
        self.member = member
        self.inservice = member.inservice
        self.limit = member.conn_max is not None
        self.mi = mi
        self.cell = None  # MemberCell of the RuntimeState last asked (see _pick_cell)


def _pick_cell(rs: RuntimeState, pk: Pick) -> MemberCell:
    """`rs.cell(pk.member)`, kept on the Pick while `rs` owns it (cells are never replaced)."""
    c = pk.cell
    if c is None or c.owner is not rs:
        c = pk.cell = rs.cell(pk.member)
    return c


def _pick_available(state: RuntimeState, pk: Pick) -> bool:
    """`_available(state, pk.member)`: RuntimeState.available's steps on the Pick's fields."""
    if type(state) is not RuntimeState:
        return state.available(pk.member)
    rs = state
    if not pk.inservice:
        return False
    c = _pick_cell(rs, pk)
    if c.probe_down or c.host.admin_out:
        return False
    if not pk.limit:
        return True
    return not rs._at_limit(pk.member, c)


def _pick_opened(state: RuntimeState, pk: Pick) -> None:
    """`_opened(state, pk.member)`: RuntimeState.opened's count on the Pick's cell."""
    if type(state) is RuntimeState:
        c = _pick_cell(state, pk)
        c.conns += 1
        c.host.conns += 1
    else:
        state.opened(pk.member)


def _available_picks(state: RuntimeState, primaries: tuple) -> tuple[Member, ...]:
    """available_members() of a Plan's primary farm when a primary may be picked, read from
    its primaries' Picks (`primaries`, in the farm's order): decide()'s rule 2 for a new
    client (issue 11's insert rate).  () when none may: the caller then asks
    available_members(), which knows the backups."""
    out = []
    for pk in primaries:
        if _pick_available(state, pk):
            out.append(pk.member)
    if type(state) is RuntimeState:
        rs = state
        draining = rs.draining
    else:
        draining = state.draining
    return _undrained(out, draining) if draining else tuple(out)


def _picks_in(state: RuntimeState, picks: tuple, primaries: tuple) -> list:
    """`_buddies` on Picks: the available ones, backups dropped when a primary of the
    farm (`primaries`, its primary members' Picks) is available."""
    out = []
    backup = False
    for pk in picks:
        if _pick_available(state, pk):
            out.append(pk)
            backup = backup or pk.member.backup
    if backup:
        for pk in primaries:
            if _pick_available(state, pk):
                out = [b for b in out if not b.member.backup]
                break
    return out


class Buddy4:
    """Rule 4 for one (last farm, member byte) of a Plan: the buddy group of that rserver,
    its members in the plan's primary farm (as Picks) and rule 4's two texts (Plan.b4)."""

    __slots__ = ("group", "members", "kept", "pick")

    def __init__(self, group: str, members: tuple, kept: str, pick: str) -> None:
        self.group = group
        self.members = members
        self.kept = kept
        self.pick = pick


def _buddy_rows(ctx: Context, scope: Scope, names: list, farm0: Farm, fi0: int, index: dict) -> list | None:
    """Plan.b4: for each farm of the scope but the primary one and each member byte there,
    what resolve() reads for rule 4 in `farm0` (the group of that rserver, the group's
    members in farm0 as Picks, `index` their member bytes, the texts); None where that
    rserver is in no group."""
    rows: list = []
    found = False
    for fi, farm_name in enumerate(scope.farms):
        row: list = []
        if fi != fi0:
            for name in names[fi]:
                group = ctx.buddy_of.get((farm_name, name)) if name is not None else None
                if group is not None:
                    found = True
                    members = ctx.buddy_members.get((group, farm0.name), ())
                    row.append(Buddy4(group, tuple([Pick(m, index.get(m.rserver, 0)) for m in members]),
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
