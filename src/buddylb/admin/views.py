"""The data behind every SPEC §4 show command, as JSON-ready dicts.

Each `show_*` function reads a snapshot, the runtime state and the sticky tables and
returns plain data; it never mutates routing state.  The views that say what *would*
happen (the explain view, the drain preview) are in `admin.explain`.
Text tables are `admin.render`'s job; transport is `admin.api`'s.

JSON conventions (SPEC §4): addresses and IP keys in address notation, masks dotted,
prefixes integers, durations in seconds in fields ending in `_s`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from buddylb.core.health import ProbeTarget
from buddylb.core.keys import V6_TAG, addr_int, format_key, ip_key, split_both
from buddylb.core.snapshot import Context, Farm, Member, Scope, Snapshot
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable
from buddylb.core.sticky_scan import scan
from buddylb.errors import CommandError

Tables = Mapping[str, StickyTable]


def select_contexts(snap: Snapshot, context: str | None) -> list[Context]:
    """The contexts a `context C` filter names (all without one); an unknown name is a
    usage error naming the known ones.  The explain views (admin.explain) filter by it too."""
    if context is None:
        return list(snap.contexts.values())
    if context not in snap.contexts:
        raise CommandError(f'context "{context}" does not exist; known: {", ".join(snap.contexts)}', 2)
    return [snap.contexts[context]]


def _member_row(m: Member, state: RuntimeState) -> dict[str, Any]:
    return {
        "rserver": m.rserver,
        "address": m.address,
        "port": m.port,
        "weight": m.weight,
        "state": state.state_name(m),
        "backup": m.backup,
        "buddy_group": m.buddy_group,
        "connections": state.connections(m),
        "conn_limit": None if m.conn_max is None else {"max": m.conn_max, "min": m.conn_min},
    }


# -- compiled configuration (buddylb check --json) ------------------------------------
def scope_view(scope: Scope) -> dict[str, Any]:
    return {
        "name": scope.name,
        "buddy": scope.is_buddy,
        "kind": scope.kind,
        "address": scope.address if scope.kind == "ip-netmask" else None,
        "effective_mask": scope.netmask if scope.kind == "ip-netmask" else None,
        "effective_v6_prefix": scope.prefix6 if scope.kind == "ip-netmask" else None,
        "effective_timeout_s": scope.timeout_s,
        "activeconns": scope.activeconns,
        "sticky_groups": list(scope.sticky_groups),
        "farms": list(scope.farms),
        "cookie": scope.cookie_name,
        "cookie_insert": scope.cookie_insert,
        "header": scope.header_name,
    }


def compiled_view(snap: Snapshot, state: RuntimeState | None = None) -> dict[str, Any]:
    st = state or RuntimeState()
    out: dict[str, Any] = {"source": snap.source, "timeouts_s": dict(snap.timeouts), "contexts": {}}
    out["trusted_proxies"] = [str(n) for n in snap.trusted_proxies]
    for ctx in snap.contexts.values():
        out["contexts"][ctx.name] = {
            "max_entries": ctx.max_entries,
            "serverfarms": {f.name: _farm_view(f, st) for f in ctx.farms.values()},
            "sticky_groups": {
                s.name: {"scope": s.scope.name, "serverfarm": s.farm, "backup": s.backup_farm, "timeout_s": s.timeout_s}
                for s in ctx.stickies.values()
            },
            "scopes": {s.name: scope_view(s) for s in ctx.scopes.values()},
            "buddy_real_groups": {g: {f: list(rs) for f, rs in fm.items()} for g, fm in ctx.buddy_real_groups.items()},
        }
    out["vips"] = [
        {
            "vip": v.name,
            "address": v.address,
            "port": v.port,
            "context": v.context,
            "class": v.class_name,
            "policy": v.policy.name,
            "http": v.policy.http,
            "tls": v.tls.name if v.tls else None,
            "inservice": v.inservice,
        }
        for v in snap.vips.values()
    ]
    return out


def _farm_view(f: Farm, state: RuntimeState) -> dict[str, Any]:
    p = f.predictor
    predictor = p.kind if p.kind != "hash" else f"hash address {p.hash_address} /{p.hash_prefix4}"
    return {
        "predictor": predictor,
        "probes": list(f.probes),
        "fail_action_purge": f.fail_action_purge,
        "send_proxy": f"v{f.send_proxy}" if f.send_proxy else None,  # SPEC §2.1 send-proxy v1|v2
        "rservers": [_member_row(m, state) for m in f.members],
    }


# -- show serverfarm / rserver / buddy-group -----------------------------------------
def show_serverfarm(snap: Snapshot, state: RuntimeState, name: str | None = None, context: str | None = None) -> list[dict]:
    rows = []
    for ctx in select_contexts(snap, context):
        for f in ctx.farms.values():
            if name is None or f.name == name:
                rows.append({"context": ctx.name, "serverfarm": f.name, **_farm_view(f, state)})
    if name is not None and not rows:
        raise CommandError(f'serverfarm "{name}" does not exist', 2)
    return rows


def show_rserver(snap: Snapshot, state: RuntimeState, name: str | None = None, context: str | None = None) -> list[dict]:
    """Each rserver host: its admin state (config and operator) and its operational state,
    summed up over its farms and per farm (with the farm's own weight)."""
    rows = []
    for ctx in select_contexts(snap, context):
        for rs, (address, weight, inservice) in ctx.rservers.items():
            if name is not None and rs != name:
                continue
            farms = [
                {"serverfarm": f.name, "port": m.port, "weight": m.weight, "buddy_group": m.buddy_group,
                 "state": state.state_name(m), "connections": state.connections(m)}
                for f in ctx.farms.values()
                for m in f.members
                if m.rserver == rs
            ]
            admin_state = "OUTOFSERVICE" if not inservice else state.admin_state(ctx.name, rs)
            rows.append({
                "context": ctx.name, "rserver": rs, "address": address, "host_weight": weight,
                "admin_state": admin_state,
                "state": "OUTOFSERVICE" if admin_state == "OUTOFSERVICE" else _summary(farms),
                "operator_out": state.admin_out(ctx.name, rs),
                "connections": state.host_connections(ctx.name, rs), "serverfarms": farms,
            })
    if name is not None and not rows:
        raise CommandError(f'rserver "{name}" does not exist', 2)
    return rows


def _summary(farms: list[dict]) -> str:
    """One operational state for a host: OPERATIONAL when every farm says so; a state
    every farm shares (PROBE-FAILED, MAXCONNS, OUTOFSERVICE of the farm entries); else
    each farm's non-operational state, e.g. `PROBE-FAILED(http)`."""
    states = {f["state"] for f in farms}
    if not states or states == {"OPERATIONAL"}:
        return "OPERATIONAL"
    if len(states) == 1:
        return states.pop()
    return ",".join(f"{f['state']}({f['serverfarm']})" for f in farms if f["state"] != "OPERATIONAL")


def show_buddy_group(snap: Snapshot, name: str | None = None, context: str | None = None) -> dict[str, list]:
    real, sticky = [], []
    for ctx in select_contexts(snap, context):
        for g, farms in ctx.buddy_real_groups.items():
            if name is None or g == name:
                real.append({"context": ctx.name, "name": g, "serverfarms": {f: list(r) for f, r in farms.items()},
                             "single_farm": len(farms) < 2})
        for scope in ctx.scopes.values():
            if scope.is_buddy and (name is None or scope.name == name):
                sticky.append({"context": ctx.name, **scope_view(scope)})
    if name is not None and not real and not sticky:
        raise CommandError(f'buddy group "{name}" does not exist', 2)
    return {"buddy_real_groups": real, "buddy_sticky_groups": sticky}


# -- show sticky database / stats -----------------------------------------------------
def _client_prefix(client: str) -> tuple[int, int, bool]:
    """`A` or `A/LEN` -> (address int, prefix length, is_v6); CommandError when malformed."""
    addr, _, bits = client.partition("/")
    _check_address(addr)
    value, v6 = addr_int(addr)
    width = 128 if v6 else 32
    try:
        n = int(bits) if bits else width
    except ValueError:
        n = -1
    if not 0 <= n <= width:
        raise CommandError(f'"{client}" is not an address or prefix; write A or A/LEN (LEN 0-{width})', 2)
    return value, n, v6


def _parse_cursor(cursor: str | None) -> tuple[int, int]:
    """`CONTEXT_NUMBER.SLOT` as given in a row's `cursor` field -> (context number, slot)."""
    if cursor in (None, ""):
        return 0, 0
    try:
        c, _, slot = str(cursor).partition(".")
        out = int(c), int(slot)
    except ValueError:
        out = (-1, -1)
    if min(out) < 0:
        raise CommandError(f'"{cursor}" is not a cursor; pass the "cursor" of the last row shown', 2)
    return out


def _farm_filter(ctx: Context, table: StickyTable, farm: str | None, rserver: str | None) -> dict | None:
    """Per scope number: the (farm number, member index + 1 or 0 for any) pairs an entry
    must name one of; None when neither filter is given."""
    if farm is None and rserver is None:
        return None
    if farm is not None and farm not in ctx.farms:
        return {}
    out: dict[int, list[tuple[int, int]]] = {}
    for st in table.scopes.values():
        pairs = []
        for fi, fname in enumerate(st.scope.farms):
            if farm is not None and fname != farm:
                continue
            if rserver is None:
                pairs.append((fi, 0))
            elif rserver in st.index_of[fi]:
                pairs.append((fi, st.index_of[fi][rserver]))
        if pairs:
            out[st.sid] = pairs
    return out


def show_sticky_database(snap: Snapshot, tables: Tables, now: float, *, buddy: bool = False,
                         context: str | None = None, group: str | None = None,
                         client: str | None = None, farm: str | None = None, rserver: str | None = None,
                         limit: int | str | None = None, cursor: str | None = None) -> list[dict]:
    """Live entries matching every filter given, in storage order, at most `limit` rows
    from `cursor` (the `cursor` field of the last row of the previous page).

    Filters: context, sticky group or scope, client address or prefix (`A/LEN`, matched
    against the source part of IP keys), farm, rserver (named in any farm, or in `farm`).
    A page is one bounded scan (`StickyTable.scan`), so the first page of a table of
    millions costs what its rows cost."""
    prefix = _client_prefix(client) if client is not None else None
    limit = _limit(limit)
    start_ctx, start_slot = _parse_cursor(cursor)
    contexts = select_contexts(snap, context)
    if group is not None:
        having = [c for c in contexts if c.has_sticky_group(group)]
        if not having:
            where = f"in context {context}" if context else "in any context"
            raise CommandError(f'sticky group "{group}" does not exist {where}', 2)
        contexts = having
    want = limit if limit is not None else 1 << 62
    rows: list[dict] = []
    for n, ctx in enumerate(snap.contexts.values()):
        table = tables.get(ctx.name)
        if n < start_ctx or ctx not in contexts or table is None:
            continue
        sids = [not (buddy and not st.scope.is_buddy)
                and (group is None or group == st.scope.name or group in st.scope.sticky_groups)
                and (prefix is None or st.scope.kind == "ip-netmask")
                for st in table.scopes.values()]
        members = _farm_filter(ctx, table, farm, rserver)
        v4 = prefix is not None and not prefix[2]
        match = _prefix_match(table, prefix) if prefix is not None and not v4 else None
        prefix4 = (prefix[0], prefix[1]) if prefix is not None and v4 else None
        slot = start_slot if n == start_ctx else 0
        while slot is not None and len(rows) < want:
            page, slot = scan(table, slot, want - len(rows), now, sids=sids, members=members, match=match,
                              prefix4=prefix4)
            for st, key, e in page:
                rows.append(_db_row(ctx, table, st, key, e, now) | {"cursor": f"{n}.{e.slot + 1}"})
        if len(rows) >= want:
            break
    return rows


def _prefix_match(table: StickyTable, prefix: tuple[int, int, bool]):
    value, bits, v6 = prefix

    def match(st: Any, slot: int) -> bool:
        key = table._key(st, slot)
        scope = st.scope
        if not isinstance(key, int):
            return False
        if scope.address == "both":
            key = split_both(key)[0]
        if bool(key & V6_TAG) != v6:
            return False
        width, plen = (128, scope.prefix6) if v6 else (32, scope.prefix4)
        m = min(bits, plen)
        return ((key & ~V6_TAG) >> (width - m)) == (value >> (width - m))
    return match


def _db_row(ctx: Context, table: StickyTable, st: Any, key: Any, e: Any, now: float) -> dict[str, Any]:
    scope = st.scope
    return {
        "context": ctx.name, "scope": scope.name, "type": scope.kind, "key": format_key(scope, key),
        "last_serverfarm": scope.farms[e.last], "last_rserver": e.last_rserver,
        "serverfarms": {f: r for f, r in zip(scope.farms, e.farms) if r is not None},
        "expires_in_s": _round(table.expires_in(e, now)), "open_connections": e.open,
        "flags": ["buddy"] if scope.is_buddy else [],
    }


def _limit(limit: int | str | None) -> int | None:
    if limit is None:
        return None
    try:
        n = int(limit)
    except ValueError:
        n = 0
    if n < 1:
        raise CommandError(f'limit must be a positive number of rows, not "{limit}"', 2)
    return n


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def show_stats_sticky(snap: Snapshot, tables: Tables, context: str | None = None, store: dict | None = None) -> list[dict]:
    rows = []
    for ctx in select_contexts(snap, context):
        t = tables.get(ctx.name)
        if t is None:
            continue
        rows.append({
            "context": ctx.name, "entries": t.size, "capacity": t.max_entries, **t.counters.as_dict(),
            "buddy_sticky_groups": sum(1 for s in ctx.scopes.values() if s.is_buddy),
            "store": dict(store or {"kind": "memory", "degraded": False}),
        })
    return rows


# -- the explain view and the drain preview live in admin.explain ------------------------
def _check_address(address: str) -> None:
    try:
        addr_int(address)
    except (OSError, ValueError) as exc:
        raise CommandError(f'"{address}" is not an IP address', 2) from exc


def show_probe(snap: Snapshot, targets: Iterable[ProbeTarget], history: Callable[[ProbeTarget], list],
               name: str | None = None) -> list[dict]:
    """SPEC §4 `show probe [NAME]`: each target's state, last result, consecutive failures,
    and (issue 14) its last results, oldest first, from `history` (io.probes.Prober.results)."""
    rows = []
    for t in targets:
        if name is not None and t.probe != name:
            continue
        past = [r.as_dict() for r in history(t)]
        rows.append({"context": t.context, "probe": t.probe, "serverfarm": t.farm, "rserver": t.rserver,
                     "address": t.address, "port": t.port, "state": "UP" if t.up else "DOWN",
                     "last_result": t.last_result, "detail": t.last_detail,
                     "latency_ms": past[-1]["latency_ms"] if past else None,
                     "consecutive_failures": t.consecutive_failures, "checks": t.checks, "history": past})
    if name is not None and not rows and not any(name in c.probes for c in snap.contexts.values()):
        raise CommandError(f'probe "{name}" does not exist', 2)
    return rows
