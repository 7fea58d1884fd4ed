"""The two "what would happen" views: the explain view (`show sticky client`) and the
drain preview (`show impact rserver`), as JSON-ready data (SPEC §4).

Both call `core.decide.resolve()`, the function the data path decides with, on the state
of the moment (the drain preview on a view of it with one rserver out of service, see
`core.impact`), so what they say is what the next request gets.  Neither mutates
anything: no entry, counter or predictor cursor moves.  Text is `admin.render`'s job.

`show sticky client` takes what identifies a client in each kind of scope: an address
for ip-netmask scopes; a cookie value for http-cookie scopes (buddylb's signed token as
the browser holds it, or the client id `show sticky database` prints); a header value
for http-header scopes; a session id in hex for ssl-session scopes.
"""
from __future__ import annotations

import re
from typing import Any, Hashable

from buddylb.admin.views import Tables, select_contexts
from buddylb.core import cookie as sticky_cookie
from buddylb.core.decide import available_members, only_limited, resolve_class
from buddylb.core.impact import VIEWS, backup_chain, farm_impact, scopes_of_farm
from buddylb.core.keys import addr_int, format_key, ip_key
from buddylb.core.predictors import peek
from buddylb.core.snapshot import Context, Scope, Snapshot
from buddylb.core.state import RuntimeState
from buddylb.errors import CommandError

_CLIENT_ID = re.compile(r"[0-9a-f]{24}")  # core.cookie: 12 random bytes, hex
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def _is_address(text: str) -> bool:
    try:
        addr_int(text)
    except (OSError, ValueError):
        return False
    return True


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _scope_destination(snap: Snapshot, ctx: Context, scope: Scope) -> str:
    """A VIP address of the scope, for `address both|destination` keys."""
    for vip in snap.vips.values():
        if vip.context == ctx.name and any(c.sticky in scope.sticky_groups for c in vip.policy.classes if c.sticky):
            return vip.address
    return "0.0.0.0"


def client_key(snap: Snapshot, ctx: Context, scope: Scope, client: str, secret: bytes, wall: float) -> Hashable:
    """The key `client` has in `scope`, or None when it cannot be one of this kind."""
    kind = scope.kind
    if kind == "ip-netmask":
        return ip_key(scope, client, _scope_destination(snap, ctx, scope)) if _is_address(client) else None
    if kind == "http-cookie" and scope.cookie_insert:
        verified = sticky_cookie.verify(secret, scope.name, client, wall, scope.timeout_s)
        if verified is not None:
            return verified[0]
        return client if _CLIENT_ID.fullmatch(client) else None
    if kind == "ssl-session":
        return bytes.fromhex(client) if _HEX.fullmatch(client) else None
    return client  # a learned cookie or a header: the value itself


def show_sticky_client(snap: Snapshot, state: RuntimeState, tables: Tables, now: float, client: str,
                       context: str | None = None, secret: bytes = b"", wall: float = 0.0) -> list[dict]:
    """For each scope `client` can be keyed in: its entry and the rserver it would get in
    each farm now.  An address is also tried as a cookie/header value, but those scopes
    are listed for it only when they hold an entry under that value."""
    is_ip = _is_address(client)
    out = []
    for ctx in select_contexts(snap, context):
        table = tables.get(ctx.name)
        for scope in ctx.scopes.values():
            key = client_key(snap, ctx, scope, client, secret, wall)
            if key is None:
                continue
            st = table.scopes.get(scope.name) if table else None
            # peek() is the table's public read: never an expired entry (SPEC §3), nothing moves
            e = table.peek(scope.name, key, now) if st is not None and table is not None else None
            if e is None and is_ip and scope.kind != "ip-netmask":
                continue
            addrs = (client if is_ip else "0.0.0.0", _scope_destination(snap, ctx, scope))
            out.append(_explained(ctx, state, scope, key, e, st, now, addrs))
    if not out and not is_ip and not any(s.kind != "ip-netmask" for c in select_contexts(snap, context)
                                         for s in c.scopes.values()):
        raise CommandError(f'"{client}" is not an IP address, and no cookie, header or ssl-session sticky '
                           "scope exists to take it as a value", 2)
    return out


def _explained(ctx: Context, state: RuntimeState, scope: Scope, key: Hashable, e: Any, st: Any,
               now: float, addrs: tuple[str, str]) -> dict[str, Any]:
    entry = None if e is None else {
        "key": format_key(scope, key), "last_serverfarm": scope.farms[e.last], "last_rserver": e.last_rserver,
        "serverfarms": {f: r for f, r in zip(scope.farms, e.farms) if r is not None},
        "expires_in_s": _round(st.expires_in(e, now)), "open_connections": e.open,
    }
    farms = [_explain_farm(ctx, state, scope, fname, e, addrs) for fname in scope.farms]
    return {"context": ctx.name, "scope": scope.name, "type": scope.kind, "buddy": scope.is_buddy,
            "key": format_key(scope, key), "entry": entry, "serverfarms": farms}


def _explain_farm(ctx: Context, state: RuntimeState, scope: Scope, fname: str, e: Any,
                  addrs: tuple[str, str]) -> dict[str, Any]:
    """What a request for farm `fname` of `scope` gets now: `resolve_class`, the data
    path's own function (rule 6 first, then the backup farm of the sticky group), and the
    predictor's pick as `peek` sees it (SPEC §3: the explain view says what happens next)."""
    farm = ctx.farms[fname]
    chain = backup_chain(ctx, scope, fname)
    served, res = resolve_class(ctx, state, scope, chain, e)
    pick = res.member
    if pick is None and served is not None:
        pick = peek(served, res.candidates, state, addrs)
    return {
        "serverfarm": fname, "served_by": served.name if served is not None else None,
        "backup": served is not None and served is not farm,
        "outcome": res.outcome, "rule": res.rule,
        "rserver": res.member.rserver if res.member else None,
        "port": pick.port if pick else None,
        "next_rserver": pick.rserver if pick else None,
        "candidates": [m.rserver for m in res.candidates] if res.member is None else [],
        "predictor": served.predictor.kind if res.member is None and served is not None else None,
        "available": [m.rserver for m in available_members(farm, state)],
        "queue": served is None and only_limited(state, chain),
    }


# -- the drain preview ----------------------------------------------------------------------
def show_impact(snap: Snapshot, state: RuntimeState, tables: Tables, now: float, rserver: str,
                farm: str | None = None, context: str | None = None, action: str = "outofservice") -> dict[str, Any]:
    """SPEC §4 `show impact rserver NAME [farm F]`: per farm (and scope), the entries that
    name the rserver and where their clients would go with it out of service (`action`
    "outofservice") or draining ("drain"), and where new clients would go."""
    if action not in VIEWS:
        raise CommandError(f'impact action "{action}" is not one of: {", ".join(VIEWS)}', 2)
    contexts = [c for c in select_contexts(snap, context) if rserver in c.rservers]
    if not contexts:
        raise CommandError(f'rserver "{rserver}" does not exist', 2)
    rows = []
    for ctx in contexts:
        table = tables.get(ctx.name)
        by_scope: dict[str, list] = {}
        if table is not None:
            for st, _key, e in table.items(now):
                by_scope.setdefault(st.scope.name, []).append(e)
        for f in ctx.farms.values():
            if rserver not in f.by_rserver or (farm is not None and f.name != farm):
                continue
            scopes = scopes_of_farm(ctx, f.name) or [None]
            for scope in scopes:
                entries = by_scope.get(scope.name, []) if scope is not None else []
                row = farm_impact(ctx, state, scope, f.name, rserver, entries, action).as_dict(rserver)
                row["connections"] = state.connections(f.by_rserver[rserver])
                rows.append(row)
    if farm is not None and not rows:
        raise CommandError(f'rserver "{rserver}" is not in serverfarm "{farm}"', 2)
    totals = {k: sum(r[k] for r in rows) for k in ("entries", "stay", "follow_buddy", "restick", "keep",
                                                     "no_server", "open_connections", "connections")}
    return {"rserver": rserver, "action": action, "contexts": [c.name for c in contexts], "serverfarms": rows,
            "totals": totals}
