"""The dashboard (issue 14): its static files, its session cookie and the data of its views.

Owns what only the browser needs: the files under `admin/static/` (plain HTML, CSS and
JavaScript drawing SVG: no build step, nothing fetched at run time), the login cookie
that stands for the admin token, and three read-only views the show commands lack —
the overview (VIPs and rates over 15 minutes, from `admin.history`), the buddy map
(farms as columns, rservers with their operational state, buddy real groups as links
with buddy hits per second), and a page of the sticky database.  Everything else the
page shows comes from the ordinary show routes, so the page and the CLI never differ.

Access (SPEC §4): on loopback everything is open; elsewhere the token is entered once
in the page, sent to `POST /login`, and answered with an HttpOnly, SameSite=Strict
cookie whose value is an HMAC of the token (the token itself never sits in the
browser).  It never mutates anything: actions go through the ordinary POST routes.
"""
from __future__ import annotations

import hashlib
import hmac
from importlib import resources
from itertools import islice
from typing import Any, Mapping

from buddylb.admin.history import SAMPLE_EVERY_S, History
from buddylb.core.keys import format_key
from buddylb.core.snapshot import Snapshot
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable

COOKIE = "buddylb_admin"
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
PAGE_MAX = 200


def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of a dashboard file, or None for any other name."""
    ctype = STATIC.get(name)
    if ctype is None:
        return None
    return resources.files("buddylb.admin").joinpath("static", name).read_bytes(), ctype


def session_value(token: str) -> str:
    """The cookie value that stands for `token`: it proves the token was given, and is not it."""
    return hmac.new(token.encode(), b"buddylb dashboard session", hashlib.sha256).hexdigest()


def session_ok(token: str | None, cookie_header: bytes | None) -> bool:
    if token is None or not cookie_header:
        return False
    want = session_value(token).encode()
    for pair in cookie_header.split(b";"):
        name, _, value = pair.strip().partition(b"=")
        if name == COOKIE.encode() and hmac.compare_digest(value, want):
            return True
    return False


def set_cookie(token: str) -> str:
    return f"{COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Strict"


# -- views ----------------------------------------------------------------------------------
def overview(snap: Snapshot, history: History, open_connections: int) -> dict[str, Any]:
    rates = history.rates()
    totals = history.totals()
    contexts = {}
    for ctx in snap.contexts.values():
        vips = [{"vip": v.name, "class": v.class_name, "mode": "L7" if v.policy.http else "L4",
                 "tls": v.tls is not None, "inservice": v.inservice}
                for v in snap.vips.values() if v.context == ctx.name]
        contexts[ctx.name] = {"vips": vips, "series": rates.get(ctx.name, {"t": [], "requests": [],
                                                                           "connections": [], "decisions": {}}),
                              "totals": totals.get(ctx.name, {"requests": 0, "connections": 0, "decisions": {}})}
    return {"generation": snap.generation, "open_connections": open_connections, "contexts": contexts,
            "sample_every_s": SAMPLE_EVERY_S, "workers": 1}


def buddy_map(snap: Snapshot, state: RuntimeState, history: History) -> dict[str, Any]:
    """Per context: farms in order with their rservers, and each buddy real group's links."""
    rates = history.buddy_rates()
    out = {}
    for ctx in snap.contexts.values():
        farms = [{"serverfarm": f.name, "predictor": f.predictor.kind,
                  "rservers": [{"rserver": m.rserver, "port": m.port, "weight": m.weight, "backup": m.backup,
                                "state": state.state_name(m), "connections": state.connections(m),
                                "buddy_group": m.buddy_group} for m in f.members]}
                 for f in ctx.farms.values()]
        groups = []
        for g, per_farm in ctx.buddy_real_groups.items():
            hits = {f: rates.get((ctx.name, f, g), 0.0) for f in per_farm}
            groups.append({"name": g, "serverfarms": {f: list(rs) for f, rs in per_farm.items()},
                           "buddy_hits_per_s": hits, "single_farm": len(per_farm) < 2})
        scopes = [{"name": s.name, "buddy": s.is_buddy, "kind": s.kind, "serverfarms": list(s.farms)}
                  for s in ctx.scopes.values()]
        out[ctx.name] = {"serverfarms": farms, "buddy_real_groups": groups, "scopes": scopes}
    return out


def sticky_page(snap: Snapshot, tables: Mapping[str, StickyTable], now: float, context: str | None,
                offset: int, limit: int) -> dict[str, Any]:
    """One page of the sticky database through the table's public iteration (`items`)."""
    limit = max(1, min(limit, PAGE_MAX))
    offset = max(0, offset)
    rows: list[dict[str, Any]] = []
    total = 0
    for name, table in tables.items():
        if context is not None and name != context:
            continue
        total += table.size
        if len(rows) >= limit:
            continue
        skip = max(0, offset - (total - table.size))
        for st, key, e in islice(table.items(now), skip, skip + limit - len(rows)):
            scope = st.scope
            rows.append({"context": name, "scope": scope.name, "type": scope.kind, "key": format_key(scope, key),
                         "last_serverfarm": scope.farms[e.last], "last_rserver": e.last_rserver,
                         "serverfarms": {f: r for f, r in zip(scope.farms, e.farms) if r is not None},
                         "expires_in_s": None if st.expires_in(e, now) is None else round(st.expires_in(e, now), 1),
                         "open_connections": e.open})
    return {"offset": offset, "limit": limit, "total": total, "rows": rows}
