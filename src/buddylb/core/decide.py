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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, NamedTuple, Sequence

from buddylb.core import cookie as sticky_cookie
from buddylb.core.classify import classify
from buddylb.core.keys import effective_client, ip_key
from buddylb.core.predictors import choose
from buddylb.core.snapshot import Context, Farm, Member, Scope, Snapshot, StickyGroup, Vip
from buddylb.core.state import RuntimeState
from buddylb.core.statics import static_member
from buddylb.core.sticky import Entry, StickyTable

NO_STICKY = "no_sticky"
NEW = "new"
STICKY_HIT = "sticky_hit"
BUDDY_HIT = "buddy_hit"
RESTICK = "restick"
NO_SERVER = "no_server"


@dataclass(slots=True, init=False)
class Flow:
    """What the engine needs to know about one connection or request.

    The __init__ is written out (not generated): compiled, it runs in C, and one Flow is
    made per connection or request (issue 11)."""

    source: str
    destination: str
    url: str | None = None  # L7 only: the request target including the query
    headers: Mapping[str, str] | None = None  # lower-case names
    cookies: Mapping[str, str] | None = None
    xff: Sequence[str] | None = None  # X-Forwarded-For values as received
    ssl_session: bytes | None = None  # ClientHello session id on TLS passthrough
    wall: float = 0.0  # wall-clock seconds, for cookie tokens

    def __init__(self, source: str, destination: str, url: str | None = None,
                 headers: Mapping[str, str] | None = None, cookies: Mapping[str, str] | None = None,
                 xff: Sequence[str] | None = None, ssl_session: bytes | None = None, wall: float = 0.0) -> None:
        self.source = source
        self.destination = destination
        self.url = url
        self.headers = headers
        self.cookies = cookies
        self.xff = xff
        self.ssl_session = ssl_session
        self.wall = wall


@dataclass(slots=True, init=False)
class Decision:
    """What decide() chose.  The __init__ is written out so that, compiled, it runs in C."""

    outcome: str
    vip: Vip
    class_name: str | None = None
    farm: Farm | None = None
    member: Member | None = None
    scope: Scope | None = None
    key: Hashable = None
    entry: Entry | None = None
    table: StickyTable | None = None
    set_cookie: str | None = None  # value of buddylb's cookie to send back (cookie insert)
    learn_cookie: str | None = None  # learned cookie name to watch for in the response
    learn_session: bool = False  # ssl-session: learn the id from the ServerHello
    queue: bool = False  # rule 6: every server is only at its connection limit
    tried: tuple[str, ...] = ()
    rule: str = ""

    def __init__(self, outcome: str, vip: Vip, class_name: str | None = None, farm: Farm | None = None,
                 member: Member | None = None, scope: Scope | None = None, key: Hashable = None,
                 entry: Entry | None = None, table: StickyTable | None = None, set_cookie: str | None = None,
                 learn_cookie: str | None = None, learn_session: bool = False, queue: bool = False,
                 tried: tuple[str, ...] = (), rule: str = "") -> None:
        self.outcome = outcome
        self.vip = vip
        self.class_name = class_name
        self.farm = farm
        self.member = member
        self.scope = scope
        self.key = key
        self.entry = entry
        self.table = table
        self.set_cookie = set_cookie
        self.learn_cookie = learn_cookie
        self.learn_session = learn_session
        self.queue = queue
        self.tried = tried
        self.rule = rule

    @property
    def address(self) -> str:
        return self.member.address if self.member else ""

    @property
    def port(self) -> int:
        return self.member.target_port(self.vip.port) if self.member else 0


class Resolution(NamedTuple):
    """Which SPEC §3 rule applies: a fixed rserver, or candidates for the predictor.

    A NamedTuple, not a frozen dataclass: one is built per decision, and a frozen
    dataclass's __init__ costs three times as much (measured in bench/)."""

    outcome: str
    member: Member | None
    candidates: tuple[Member, ...]
    rule: str


def available_members(farm: Farm, state: RuntimeState) -> tuple[Member, ...]:
    """What the predictor may pick from: available members but draining ones; backup
    members only when no primary may be picked (SPEC §2.1; a farm of draining primaries
    sends its new clients to the backups, as HAProxy does with weight-0 servers)."""
    avail = state.available
    primaries = tuple(m for m in farm.primaries if avail(m))
    if state.draining:
        primaries = _undrained(primaries, state.draining)
    if primaries or not farm.backups:
        return primaries
    backups = tuple(m for m in farm.backups if avail(m))
    return _undrained(backups, state.draining) if state.draining else backups


def _undrained(members: Sequence[Member], draining: set) -> tuple[Member, ...]:
    """`members` without those whose host drains (core.state: they take no new client)."""
    return tuple([m for m in members if m.host_key not in draining])


def resolve(ctx: Context, state: RuntimeState, scope: Scope | None, farm: Farm, entry: Entry | None) -> Resolution:
    """SPEC §3 rules 1–5 for one farm; rule 6 (backup farm, queue) is the caller's."""
    if scope is None:
        return Resolution(NO_STICKY, None, available_members(farm, state), "1: no sticky group, predictor")
    if entry is None:
        return Resolution(NEW, None, available_members(farm, state), "2: no entry, predictor")
    fi = scope.farm_index[farm.name]
    last = entry.last
    last_farm = scope.farms[last]
    last_rs = entry.rserver(last)
    if last == fi:
        m = farm.by_rserver.get(last_rs)
        if m is not None and state.available(m):
            return Resolution(STICKY_HIT, m, (), "3: last farm and rserver available")
    group = ctx.buddy_of.get((last_farm, last_rs))
    remembered = entry.rserver(fi)
    if group is not None:
        buddies = _buddies(ctx, state, group, farm)
        if buddies:
            for m in buddies:
                if m.rserver == remembered:
                    return Resolution(BUDDY_HIT, m, (), f"4: remembered rserver in buddy group {group}")
            if state.draining:  # prefer buddies taking new clients; all draining: the client follows its group
                buddies = list(_undrained(buddies, state.draining)) or buddies
            return Resolution(BUDDY_HIT, None, tuple(buddies), f"4: predictor among buddy group {group}")
    if remembered is not None:
        m = farm.by_rserver.get(remembered)
        if m is not None and state.available(m):
            return Resolution(STICKY_HIT, m, (), "5: remembered rserver for this farm")
    why = "no buddy group" if group is None else f"no available member of buddy group {group}"
    return Resolution(RESTICK, None, available_members(farm, state), f"5: {why}, predictor")


def _buddies(ctx: Context, state: RuntimeState, group: str, farm: Farm) -> list[Member]:
    """Rule 4's candidates: available members of `group` in `farm`, backups only when no
    primary of the farm is available.  (A function of its own: the compiled `resolve`
    may hold no generator.)"""
    buddies = [m for m in ctx.buddy_members.get((group, farm.name), ()) if state.available(m)]
    if any(m.backup for m in buddies) and any(state.available(m) for m in farm.primaries):
        buddies = [m for m in buddies if not m.backup]
    return buddies


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


class KeyInfo(NamedTuple):
    key: Hashable  # None: this flow has no key in the scope (balanced without an entry)
    set_cookie: str | None = None  # a token to send back (cookie insert)
    learn_cookie: str | None = None  # cookie name to learn from the response
    learn_session: bool = False  # learn the TLS session id from the ServerHello
    minted: bool = False  # the key is a client id made just now: no entry can exist


def sticky_key(snap: Snapshot, scope: Scope, flow: Flow, secret: bytes) -> KeyInfo:
    """The key that identifies this flow's client in `scope` (SPEC §3, `core.keys`)."""
    kind = scope.kind
    if kind == "ip-netmask":
        source = effective_client(flow.source, flow.xff, snap.trusted_proxies) if flow.xff else flow.source
        return KeyInfo(ip_key(scope, source, flow.destination))
    if kind == "http-header":
        return KeyInfo((flow.headers or {}).get(scope.header_name or ""))
    if kind == "ssl-session":
        return KeyInfo(flow.ssl_session or None, learn_session=True)
    # http-cookie
    value = (flow.cookies or {}).get(scope.cookie_name or "")
    if not scope.cookie_insert:
        return KeyInfo(value, learn_cookie=scope.cookie_name if value is None else None)
    verified = sticky_cookie.verify(secret, scope.name, value, flow.wall, scope.timeout_s) if value else None
    if verified is None:
        token, cid = sticky_cookie.issue(secret, scope.name, flow.wall)
        return KeyInfo(cid, set_cookie=token, minted=True)
    cid, age = verified
    refresh = None
    if age > scope.timeout_s / 2:  # keep an active client's token from ageing out
        refresh, _ = sticky_cookie.issue(secret, scope.name, flow.wall, bytes.fromhex(cid))
    return KeyInfo(cid, set_cookie=refresh)


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
    ctx = snap.contexts[vip.context]
    policy = vip.policy
    cls = classify(policy, flow.url, flow.headers, flow.cookies) if policy.http else policy.classes[0]
    if cls is None:
        return Decision(NO_SERVER, vip, rule="no policy class matches the request")
    sg: StickyGroup | None = cls.sticky_group
    farms = cls.farms
    if sg is not None and sg.statics:  # ACE `static cookie-value`: before any entry
        hit = static_member(sg, farms, state, flow.cookies)
        if hit is not None:
            state.opened(hit[1])
            return Decision(STICKY_HIT, vip, cls.name, hit[0], hit[1], rule="static cookie-value")

    scope = table = key = entry = None
    info = _NO_KEY
    if sg is not None:
        scope = sg.scope
        table = tables.get(ctx.name)
        if table is not None:
            # entries are indexed by the table's own scope; a flow still on an older
            # configuration whose scope changed since is balanced without stickiness
            st = table.scopes.get(scope.name)
            if st is None or st.scope.farms != scope.farms:
                table = None
            else:
                scope = st.scope
        if table is not None:
            if scope.kind == "ip-netmask" and not flow.xff:
                key = ip_key(scope, flow.source, flow.destination)  # the common case, no KeyInfo
            else:
                info = sticky_key(snap, scope, flow, secret)
                key = info.key
            if key is not None:
                entry = table.lookup(scope.name, key, now)
    use_scope = scope if key is not None else None

    farm, res = resolve_class(ctx, state, use_scope, farms, entry)
    if farm is not None:
        member = res.member
        if member is None:
            member = choose(farm, res.candidates, state, (flow.source, flow.destination))
        d = Decision(res.outcome, vip, cls.name, farm, member, scope, key, None, table,
                     info.set_cookie, info.learn_cookie, info.learn_session, rule=res.rule)
        if use_scope is not None and table is not None:
            _remember(d, table, use_scope, key, entry, farm, member, now)
            _count(table, d.outcome)
            if use_scope.is_buddy:
                table.counters.buddy_connections += 1  # any connection decided in a buddy sticky group
        state.opened(member)
        return d

    queue = _only_limited(state, farms)
    d = Decision(NO_SERVER, vip, cls.name, farms[0] if farms else None, None, scope, key,
                 queue=queue, rule=res.rule)
    if not requeue:
        _count(table, NO_SERVER)
    return d


_NO_KEY = KeyInfo(None)


def _only_limited(state: RuntimeState, farms: Sequence[Farm]) -> bool:
    """Rule 6's queue: some member would be available but for its connection limit."""
    return any(state.only_limited(m) for f in farms for m in f.members)


def _remember(d: Decision, table: StickyTable, scope: Scope, key: Hashable, entry: Entry | None,
              farm: Farm, member: Member, now: float) -> None:
    fi = scope.farm_index[farm.name]
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
    if table is None:
        return
    c = table.counters
    if outcome == STICKY_HIT:
        c.hits += 1
    elif outcome == NEW:
        c.misses += 1
    elif outcome == BUDDY_HIT:
        c.buddy_hits += 1
    elif outcome == RESTICK:
        c.resticks += 1
    elif outcome == NO_SERVER:
        c.no_server += 1


def connection_closed(state: RuntimeState, d: Decision, now: float) -> None:
    """The connection (L4) or request (L7) of `d` ended: counts down, expiry restarts."""
    if d.member is not None:
        state.closed(d.member)
    if d.entry is not None and d.table is not None and d.scope is not None:
        d.table.closed(d.scope.name, d.key, d.entry, now)
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
    state.opened(member)
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
