"""decide(): the one decision interface (Envoy's chooseHost) — SPEC §3 rules 1–6.

The data path calls `decide()` for every L4 connection or L7 request and carries out the
returned `Decision`; it calls `connection_closed()` when that connection / request ends,
`reroute()` when the chosen rserver refused the connection, and `learn()` when a server
response teaches a key (learned cookie, TLS session id).  All of it is sans-IO: `now` is
a monotonic time passed in, `flow.wall` the wall clock for cookie tokens.

The rules themselves live in `resolve()`, a pure function of (snapshot, state, entry)
that says which rule applies and either names the rserver or the candidates the
predictor must choose from.  `explain` (show sticky client) calls the same function,
so what the operator is shown is what the data path does.

Over 400 lines because decide(), the per-class Plan and resolve() are one compiled module
(core/decide.pxd): the hit path's calls between them stay C calls (issue 11's decision
rate); the rules' helpers that are not on that path live in sibling modules.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

from buddylb.core.avail import (Pick, _available, _buddies, _buddy_rows, _opened,  # noqa: F401
                                _pick_available, _pick_opened, _picks_in, _rule4, _undrained, available_members,
                                only_limited, _available_picks)
from buddylb.core.classify import classify
from buddylb.core.decision import _NO_KEY, Decision, Flow, Resolution, _decision, _res, fixed_key  # noqa: F401
from buddylb.core.keys import ip_key, sticky_key, v4_value  # noqa: F401 (re-exported)
from buddylb.core.predictors import choose
from buddylb.core.prefetch import lru_neighbours
from buddylb.core.slots import FORM_BOTH4, FORM_RAW
from buddylb.core.snapshot import Context, Farm, Member, PolicyClass, Scope, Snapshot, Vip
from buddylb.core.state import RuntimeState
from buddylb.core.statics import static_member
from buddylb.core.scope_table import ScopeTable
from buddylb.core.sticky import Entry, StickyTable

NO_STICKY = "no_sticky"
NEW = "new"
STICKY_HIT = "sticky_hit"
BUDDY_HIT = "buddy_hit"
RESTICK = "restick"
NO_SERVER = "no_server"
_ALL4 = 0xFFFFFFFF


class Plan:
    """What every decision in one policy class reads, resolved once per (class, sticky
    table) and cached on the class (`PolicyClass.plan`): the context, the sticky table and
    its scope table (None: balanced without stickiness), the IPv4 key rule, the primary
    farm's index in the scope.  Compiled, one typed object replaces ~20 attribute reads
    through frozen dataclasses per decision (issue 11).  `seen` is the table `tables`
    held when it was made: another one there (a reload, another engine) makes a new plan.
    `b4` (None: no rserver of the scope is in a buddy group) holds rule 4 for the primary
    farm by the entry's last farm and member byte, so a buddy decision is one lookup (members: avail.Pick)."""

    __slots__ = ("seen", "ctx", "context", "table", "st", "scope", "scope_name", "farms", "farm0", "fi0",
                 "cls_name", "ipmode", "mask4", "statics", "buddy", "hit0", "b4", "prim0", "idx0")

    def __init__(self, ctx: Context, cls: PolicyClass, seen: StickyTable | None) -> None:
        sg = cls.sticky_group
        self.seen = seen
        self.ctx = ctx
        self.context = ctx.name
        self.farms = cls.farms
        self.farm0 = cls.farms[0] if cls.farms else None
        self.cls_name = cls.name
        self.statics = sg is not None and bool(sg.statics)
        self.scope = sg.scope if sg is not None else None
        self.scope_name = self.scope.name if self.scope is not None else ""
        self.table = self.st = None
        self.fi0 = self.ipmode = -1
        self.mask4 = _ALL4
        self.buddy = False
        self.hit0: list = []  # member byte of the primary farm -> its Pick (rule 3 in C; see decide)
        self.b4 = None
        self.prim0: tuple = ()
        self.idx0: dict = {}
        st = seen.scopes.get(self.scope_name) if sg is not None and seen is not None else None
        # entries are indexed by the table's own scope; a flow still on an older
        # configuration whose scope changed since is balanced without stickiness
        if st is None or st.scope.farms != self.scope.farms:
            return
        scope = self.scope = st.scope
        self.table = seen
        self.st = st
        self.buddy = scope.is_buddy
        if self.farm0 is not None:
            self.fi0 = scope.farm_index.get(self.farm0.name, -1)
        if self.fi0 >= 0:
            # what resolve() reads for rule 3: the entry's rserver name, then the farm's member
            by_rserver = self.farm0.by_rserver
            idx0 = self.idx0 = st.index_of[self.fi0]
            self.hit0 = [Pick(by_rserver[name], mi) if name is not None and name in by_rserver else None
                         for mi, name in enumerate(st.names[self.fi0])]
            self.prim0 = tuple([Pick(m, idx0.get(m.rserver, 0)) for m in self.farm0.primaries])
            self.b4 = _buddy_rows(ctx, scope, st.names, self.farm0, self.fi0, idx0)
        if scope.kind == "ip-netmask" and scope.address in ("source", "destination", "both"):
            self.ipmode = ("source", "destination", "both").index(scope.address)
            self.mask4 = _ALL4 ^ (_ALL4 >> scope.prefix4)


def resolve(ctx: Context, state: RuntimeState, scope: Scope | None, farm: Farm, entry: Entry | None) -> Resolution:
    """SPEC §3 rules 1–5 for one farm; rule 6 (backup farm, queue) is the caller's."""
    if scope is None:
        return _res(NO_STICKY, None, available_members(farm, state), "1: no sticky group, predictor")
    if entry is None:
        return _res(NEW, None, available_members(farm, state), RULE2)
    fi = scope.farm_index[farm.name]
    last = entry.last_farm()
    last_rs = entry.rserver(last)
    if last == fi:
        m = farm.by_rserver.get(last_rs)
        if m is not None and _available(state, m):
            return _res(STICKY_HIT, m, (), RULE3)
    group = ctx.buddy_of.get((scope.farms[last], last_rs))
    remembered = last_rs if last == fi else entry.rserver(fi)
    if group is not None:
        buddies = _buddies(ctx, state, group, farm)
        if buddies:
            for m in buddies:
                if m.rserver == remembered:
                    return _res(BUDDY_HIT, m, (), _rule4(group, True))
            if state.draining:  # prefer buddies taking new clients; all draining: the client follows its group
                buddies = list(_undrained(buddies, state.draining)) or buddies
            return _res(BUDDY_HIT, None, tuple(buddies), _rule4(group, False))
    if remembered is not None:
        m = farm.by_rserver.get(remembered)
        if m is not None and _available(state, m):
            return _res(STICKY_HIT, m, (), "5: remembered rserver for this farm")
    why = "no buddy group" if group is None else f"no available member of buddy group {group}"
    return _res(RESTICK, None, available_members(farm, state), f"5: {why}, predictor")


RULE2 = "2: no entry, predictor"
RULE3 = "3: last farm and rserver available"

NO_AVAILABLE = Resolution(NO_SERVER, None, (), "6: no available rserver")


def resolve_class(ctx: Context, state: RuntimeState, scope: Scope | None, farms: Sequence[Farm],
                  entry: Entry | None) -> tuple[Farm | None, Resolution]:
    """SPEC §3 with rule 6 first: the first of (farm, backup farm) that has an available
    rserver, decided there by rules 1–5; else (None, `no_server`), whatever the entry says.

    The one function both the data path (`decide`) and the explain view (`show sticky
    client`) call, so they cannot disagree.  A farm with an available rserver always
    yields a member or non-empty candidates (rules 1, 2 and 5 fall back to every
    available member), so "nothing to pick from" is exactly "no available rserver"."""
    for farm in farms:
        res = resolve(ctx, state, scope, farm, entry)
        if res.member is not None or res.candidates:
            return farm, res
    return None, NO_AVAILABLE


def decide(
    snap: Snapshot,
    state: RuntimeState,
    tables: Mapping[str, StickyTable],
    vip: Vip,
    flow: Flow,
    now: float,
    secret: bytes = b"",
    requeue: bool = False,
) -> Decision:
    """Decide one connection or request. `requeue`: a client already waiting in the
    rule-6 queue asks again; a repeated `no_server` is not counted again."""
    policy = vip.policy
    cls = classify(policy, flow.url, flow.headers, flow.cookies) if policy.http else policy.classes[0]
    if cls is None:
        return Decision(NO_SERVER, vip, rule="no policy class matches the request")
    p = cls.plan
    if p is None or p.seen is not tables.get(p.context):
        p = Plan(snap.contexts[vip.context], cls, tables.get(vip.context))
        object.__setattr__(cls, "plan", p)  # a cache on the frozen class; see Plan
    farms = p.farms
    if p.statics:  # ACE `static cookie-value`: before any entry
        hit = static_member(cls.sticky_group, farms, state, flow.cookies)
        if hit is not None:
            _opened(state, hit[1])
            return Decision(STICKY_HIT, vip, p.cls_name, hit[0], hit[1], rule="static cookie-value")

    scope = p.scope
    table = p.table
    key = entry = None
    info = _NO_KEY
    form = -1  # the key's fixed-width form when parsed in C below (lo: its value)
    lo = 0
    if table is not None:
        if p.ipmode >= 0 and not flow.xff:
            # IPv4 keys in C, straight to the fixed-width form the table stores; anything
            # else (IPv6, unusual notations) goes through ip_key, which reads every form
            src = v4_value(flow.source) if p.ipmode != 1 else 0
            dst = v4_value(flow.destination) if p.ipmode != 0 else 0
            if src >= 0 and dst >= 0 and table.retired is None:
                if p.ipmode == 2:  # the key stays C integers (lo, form): Decision.key makes the int if asked
                    lo = ((src & p.mask4) << 32) | (dst & p.mask4)
                    form = FORM_BOTH4
                else:
                    lo = (src | dst) & p.mask4
                    form = FORM_RAW
                entry = table.lookup_fixed(p.st, lo, form, now)
                if entry is not None:  # a hit moves it to its list's tail: core.prefetch
                    lru_neighbours(table.s, entry.slot)
            else:
                key = ip_key(scope, flow.source, flow.destination)
                entry = table.lookup(p.scope_name, key, now)
        else:
            info = sticky_key(snap, scope, flow, secret)
            key = info.key
            if key is not None:
                entry = table.lookup(p.scope_name, key, now)
    if entry is not None and entry.table is table and p.fi0 >= 0 and entry.last_farm() == p.fi0:
        # SPEC §3 rule 3 in the primary farm, the common case, read in C: exactly what
        # resolve_class() finds there first (the entry's rserver for that farm, if available),
        # without its Resolution and name lookups; anything else goes through resolve_class
        mi = entry.member_index(p.fi0)
        pk = p.hit0[mi] if mi < len(p.hit0) else None
        if pk is not None and _pick_available(state, pk):
            d = _decision(STICKY_HIT, vip, p.cls_name, p.farm0, pk.member, scope, key, lo, form, table, info, RULE3)
            table.counters.hits += 1
            return _stuck(d, p, state, table, entry, pk.member, mi, pk, now)
    if entry is not None and entry.table is table and p.b4 is not None:
        # SPEC §3 rule 4 in the primary farm, the client coming from another farm of its
        # buddy sticky group: what resolve() does there when the group has an available
        # member in the farm, read from the Plan (b4) instead of three keyed lookups
        last = entry.last_farm()
        row = p.b4[last]
        mi = entry.member_index(last)
        b = row[mi] if mi < len(row) else None
        if b is not None:
            picks = _picks_in(state, b.members, p.prim0)
            if picks:
                remembered = entry.member_index(p.fi0)  # the primary farm's rserver, as a member byte
                pk = None
                for q in picks:
                    if q.mi == remembered and remembered != 0 and pk is None:
                        pk = q
                if pk is not None:
                    rule, member, mi = b.kept, pk.member, pk.mi
                else:
                    rule = b.pick
                    buddies = [q.member for q in picks]
                    if state.draining:  # as resolve(): prefer buddies taking new clients
                        buddies = list(_undrained(buddies, state.draining)) or buddies
                    member = buddies[0] if len(buddies) == 1 else choose(p.farm0, tuple(buddies), state,
                                                                         (flow.source, flow.destination))
                    mi = p.idx0.get(member.rserver, 0)
                d = _decision(BUDDY_HIT, vip, p.cls_name, p.farm0, member, scope, key, lo, form, table, info, rule)
                table.counters.buddy_hits += 1
                return _stuck(d, p, state, table, entry, member, mi, pk, now)
    use_scope = scope if key is not None or form >= 0 else None
    candidates = _available_picks(state, p.prim0) if entry is None and form >= 0 and p.fi0 >= 0 else ()
    if candidates:  # rule 2 in the primary farm for a new IPv4 client: what resolve_class() finds
        farm, outcome, member, rule = p.farm0, NEW, None, RULE2  # there first, without its Resolution
    else:
        farm, res = resolve_class(p.ctx, state, use_scope, farms, entry)
        if farm is not None:
            outcome, member, candidates, rule = res.outcome, res.member, res.candidates, res.rule
    if farm is not None:
        if member is None:
            # choose() takes a lone candidate as is; skip its call and arguments then
            member = candidates[0] if len(candidates) == 1 else choose(farm, candidates, state,
                                                                       (flow.source, flow.destination))
        d = _decision(outcome, vip, p.cls_name, farm, member, scope, key, lo, form, table, info, rule)
        if use_scope is not None and table is not None:
            fi = p.fi0 if farm is p.farm0 else use_scope.farm_index[farm.name]
            if entry is None and form >= 0:  # a new IPv4 client: stored in its fixed-width form
                entry = table.insert_fixed(p.st, lo, form, fi, p.st.index_of[fi].get(member.rserver, 0), now)
                if entry is not None:
                    table.opened(entry)
                    d.entry = entry
            else:
                _remember(d, table, use_scope, d.key, entry, fi, member, now)
            _count(table, outcome)
            if p.buddy:
                table.counters.buddy_connections += 1  # any connection decided in a buddy sticky group
        _opened(state, member)
        return d

    queue = only_limited(state, farms)
    d = Decision(NO_SERVER, vip, p.cls_name, farms[0] if farms else None, None, scope,
                 key if form < 0 else fixed_key(lo, form), queue=queue, rule=res.rule)
    if not requeue:
        _count(table, NO_SERVER)
    return d


def _stuck(d: Decision, p: Plan, state: object, table: StickyTable, entry: Entry, member: Member, mi: int,
           pk: Pick | None, now: float) -> Decision:
    """The Plan fast paths' tail (rules 3, 4): entry stamped with `member` (byte `mi`, Pick `pk`) and opened, counts."""
    table.touch(entry, p.fi0, mi, now)
    table.opened(entry)
    d.entry = entry
    if p.buddy:
        table.counters.buddy_connections += 1
    if pk is not None:
        _pick_opened(state, pk)
    else:
        _opened(state, member)
    return d


def _remember(d: Decision, table: StickyTable, scope: Scope, key: Hashable, entry: Entry | None,
              fi: int, member: Member, now: float) -> None:
    if entry is None:
        if scope.kind == "ssl-session":
            return  # the id is learned from the ServerHello (`learn`), never from a ClientHello
        entry = table.insert(scope.name, key, fi, member.rserver, now, known_absent=True)
        if entry is None:
            return  # table full of entries in use: balanced without an entry
    else:
        table.record(scope.name, key, entry, fi, member.rserver, now)
    table.opened(entry)
    d.entry = entry


def _count(table: StickyTable | None, outcome: str) -> None:
    """Count one decision; `outcome` is one of this module's constants, so they are told
    apart by identity (compiled, a string comparison each cost a measurable memcmp)."""
    if table is None:
        return
    c = table.counters
    if outcome is STICKY_HIT:
        c.hits += 1
    elif outcome is NEW:
        c.misses += 1
    elif outcome is BUDDY_HIT:
        c.buddy_hits += 1
    elif outcome is RESTICK:
        c.resticks += 1
    elif outcome is NO_SERVER:
        c.no_server += 1


def connection_closed(state: RuntimeState, d: Decision, now: float) -> None:
    """The connection (L4) or request (L7) of `d` ended: counts down, expiry restarts.
    Compiled (decide.pxd), once per L7 request: C reads of the decision, and C calls on a
    RuntimeState and the table (a stand-in state, core.impact's, is called as Python)."""
    member = d.member
    if member is not None:
        if type(state) is RuntimeState:
            rs = state
            rs.closed(member)
        else:
            state.closed(member)
    entry, table, scope = d.entry, d.table, d.scope
    if entry is not None and table is not None and scope is not None:
        # the key serves a reloaded table only, which forwards the close by key (not made otherwise)
        table.closed(scope.name, d.key if table.retired is not None else None, entry, now)
        d.entry = None


def reroute(state: RuntimeState, d: Decision, now: float, flow: Flow) -> Decision | None:
    """The chosen rserver refused: one more try on another available rserver of the farm.

    The sticky entry follows the new rserver (SPEC §5: one retry, then 502)."""
    if d.member is None or d.farm is None:
        return None
    failed = d.member
    state.closed(failed)
    tried = d.tried + (failed.rserver,)
    candidates = [m for m in available_members(d.farm, state) if m.rserver not in tried]
    member = choose(d.farm, candidates, state, (flow.source, flow.destination))
    if member is None:
        if d.entry is not None and d.table is not None and d.scope is not None:
            d.table.closed(d.scope.name, d.key, d.entry, now)
        d.entry = None
        return None
    _opened(state, member)
    nd = Decision(RESTICK if d.entry is not None else d.outcome, d.vip, d.class_name, d.farm, member,
                  d.scope, d.key, d.entry, d.table, d.set_cookie, d.learn_cookie, d.learn_session,
                  tried=tried, rule="retry after connect failure")
    if d.entry is not None and d.table is not None and d.scope is not None:
        d.table.record(d.scope.name, d.key, d.entry, d.scope.farm_index[d.farm.name], member.rserver, now)
    return nd


def learn(d: Decision, key: Hashable, now: float) -> None:
    """A server response taught a key (learned cookie value, TLS session id): store it."""
    if key is None or d.scope is None or d.table is None or d.member is None or d.farm is None:
        return
    fi = d.scope.farm_index[d.farm.name]
    entry = d.table.lookup(d.scope.name, key, now)
    if entry is None:
        entry = d.table.insert(d.scope.name, key, fi, d.member.rserver, now)
    else:
        d.table.record(d.scope.name, key, entry, fi, d.member.rserver, now)
