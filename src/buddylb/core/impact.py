"""The drain preview (SPEC §4 `show impact rserver NAME [farm F]`): what taking an
rserver out of service, or draining it, would do to the clients the sticky database
ties to it, and where new clients would go.

It owns one question: for every entry that names rserver R in a farm, which SPEC §3
rule would decide that client's next request in that farm if R were out of service,
and where would it go.  It answers by calling `core.decide.resolve_class()` — the very
function the data path uses (rule 6 first, then the sticky group's backup farm) —
against a *view* of the runtime state in which R's host is out of service (`Without`)
or draining (`Draining`),
so the preview cannot drift from what the data path does.  A client served by the
backup farm is counted under `to` as `RSERVER@BACKUPFARM`.  It never changes anything: no entry, no counter, no predictor cursor moves.

Where a rule names the rserver (a remembered buddy, a remembered rserver) the preview is
exact.  Where the farm's predictor would pick among candidates, the client is counted
in fractions by the candidates' weights (what round-robin and least-connections do over
many clients; hash spreads by the same weights in expectation).  The preview assumes
each client's next request comes to that farm, from the state of the moment: a client
that visits another farm of its scope first may move there first (SPEC §3 rule 4).

Pure: no I/O, no clock (`now` is passed in), no asyncio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from buddylb.core.decide import BUDDY_HIT, NO_SERVER, RESTICK, STICKY_HIT, available_members, resolve_class
from buddylb.core.snapshot import Context, Farm, Member, Scope
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import Entry


class Without:
    """RuntimeState as it would be with rserver `name`'s host out of service in `context`.

    Only `available` is answered differently (`draining` is the real state's);
    `resolve()` and `available_members()` need nothing else.  The real state underneath is read, never written."""

    __slots__ = ("state", "context", "name")

    def __init__(self, state: RuntimeState, context: str, name: str) -> None:
        self.state = state
        self.context = context
        self.name = name

    def available(self, m: Member) -> bool:
        if m.rserver == self.name and m.context == self.context:
            return False
        return self.state.available(m)

    @property
    def draining(self) -> set[tuple[str, str]]:
        return self.state.draining


class Draining(Without):
    """RuntimeState as it would be with rserver `name`'s host draining in `context`:
    still available to the clients tied to it, never picked for another (core.state)."""

    __slots__ = ()

    def available(self, m: Member) -> bool:
        return self.state.available(m)

    @property
    def draining(self) -> set[tuple[str, str]]:
        return self.state.draining | {(self.context, self.name)}


VIEWS = {"outofservice": Without, "drain": Draining}


@dataclass
class FarmImpact:
    """The clients one farm would move if the rserver went out of service."""

    context: str
    serverfarm: str
    scope: str | None  # the sticky scope whose entries were read (None: no stickiness here)
    entries: int = 0  # entries that name the rserver in this farm
    open_connections: int = 0  # connections of those entries, left to finish
    outcomes: dict[str, int] = field(default_factory=dict)  # SPEC §3 outcome -> clients
    to: dict[str, float] = field(default_factory=dict)  # rserver -> clients (fractions: predictor)
    predictor: str = ""
    new_clients: dict[str, float] = field(default_factory=dict)  # rserver -> share of new clients after

    @property
    def follow_buddy(self) -> int:
        return self.outcomes.get(BUDDY_HIT, 0)

    @property
    def restick(self) -> int:
        return self.outcomes.get(RESTICK, 0)

    def stay(self, rserver: str) -> int:
        """Clients whose next request still goes to `rserver` (by whichever rule: drain)."""
        return int(self.to.get(rserver, 0))

    def as_dict(self, rserver: str) -> dict[str, Any]:
        return {
            "context": self.context, "serverfarm": self.serverfarm, "scope": self.scope, "entries": self.entries,
            "stay": self.stay(rserver),
            "open_connections": self.open_connections, "follow_buddy": self.follow_buddy, "restick": self.restick,
            "keep": self.outcomes.get(STICKY_HIT, 0), "no_server": self.outcomes.get(NO_SERVER, 0),
            "outcomes": dict(sorted(self.outcomes.items())), "predictor": self.predictor,
            "to": {rs: round(n, 2) for rs, n in sorted(self.to.items())},
            "new_clients": {rs: round(n, 3) for rs, n in sorted(self.new_clients.items())},
        }


def _spread(to: dict[str, float], candidates: tuple[Member, ...], at: str) -> None:
    total = sum(m.weight for m in candidates)
    for m in candidates:
        to[m.rserver + at] = to.get(m.rserver + at, 0.0) + m.weight / total


def farm_impact(ctx: Context, state: RuntimeState, scope: Scope | None, farm_name: str, rserver: str,
                entries: Iterable[Entry], action: str = "outofservice") -> FarmImpact:
    """Resolve every entry (of `scope`) naming `rserver` in `farm_name` with that rserver
    out of service (`action` "outofservice") or draining ("drain").  `entries` are the
    scope's live entries, from the table's iteration.  `new_clients`: each rserver's
    share (by weight) of the clients the predictor places in this farm afterwards."""
    farm = ctx.farms[farm_name]
    out = FarmImpact(ctx.name, farm_name, scope.name if scope else None, predictor=farm.predictor.kind)
    view = VIEWS[action](state, ctx.name, rserver)
    pickable = available_members(farm, view)  # type: ignore[arg-type]  # duck-typed view
    total = sum(m.weight for m in pickable)
    out.new_clients = {m.rserver: m.weight / total for m in pickable} if total else {}
    if scope is None:
        return out
    fi = scope.farm_index[farm_name]
    chain = backup_chain(ctx, scope, farm_name)
    for e in entries:
        if e.farms[fi] != rserver:
            continue
        out.entries += 1
        out.open_connections += e.open
        served, res = resolve_class(ctx, view, scope, chain, e)  # type: ignore[arg-type]  # duck-typed view
        at = "" if served is None or served is farm else f"@{served.name}"
        if res.member is not None:
            name = res.member.rserver + at
            out.to[name] = out.to.get(name, 0.0) + 1
        elif res.candidates:
            _spread(out.to, res.candidates, at)
        out.outcomes[res.outcome] = out.outcomes.get(res.outcome, 0) + 1
    return out


def backup_chain(ctx: Context, scope: Scope, farm_name: str) -> list[Farm]:
    """The farm and, when its sticky group in `scope` names one, the backup farm (SPEC §3
    rule 6), in the order `resolve_class` tries them."""
    chain = [ctx.farms[farm_name]]
    for sg in ctx.stickies.values():
        if sg.scope.name == scope.name and sg.farm == farm_name and sg.backup_farm in ctx.farms:
            chain.append(ctx.farms[sg.backup_farm])
            break
    return chain


def scopes_of_farm(ctx: Context, farm_name: str) -> list[Scope]:
    """The sticky scopes (buddy sticky groups or plain sticky groups) that hold `farm_name`."""
    return [s for s in ctx.scopes.values() if farm_name in s.farm_index]
