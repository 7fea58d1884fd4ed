"""The drain preview (core.impact via admin.explain) against the data path itself.

Each test fills the sticky database by deciding real flows, asks the preview what taking
an rserver out of service would do, takes it out, replays the affected clients through
`decide()` and checks the preview's numbers came true: exactly where a rule names the
rserver, within one client per server where the predictor spreads them.
"""
from __future__ import annotations

from collections import Counter

from buddylb.admin.explain import show_impact
from tests.core.configs import ONE_TO_ONE, TIERS, _farm, _hosts, _sticky, _vips
from tests.core.engine import Engine

WEB, APP = ("127.0.0.100", 80), ("127.0.0.100", 9000)
HTTP, HTTPS = ("127.0.0.100", 80), ("127.0.0.100", 443)
CLIENTS = [f"127.0.0.{n}" for n in range(10, 50)]


def preview(e: Engine, rserver: str, farm: str | None = None) -> dict:
    return show_impact(e.snap, e.state, e.tables, e.now, rserver, farm=farm)


def row(p: dict, farm: str) -> dict:
    (r,) = [r for r in p["serverfarms"] if r["serverfarm"] == farm]
    return r


def test_tiers_web_clients_follow_their_buddy_and_app_is_untouched():
    e = Engine.from_text(TIERS)
    first = {c: e.visit(c, WEB).member.rserver for c in CLIENTS}
    for c in CLIENTS:
        e.visit(c, APP)
        e.visit(c, WEB)
    on_lnx1 = [c for c, rs in first.items() if rs == "lnx1"]
    p = preview(e, "lnx1")
    web = row(p, "web")
    assert web["entries"] == len(on_lnx1) == 10
    assert (web["follow_buddy"], web["restick"], web["no_server"]) == (10, 0, 0)
    assert web["to"] == {"lnx2": 10.0}  # blue's other web member, named by rule 4
    assert p["totals"]["entries"] == 10 and [r["serverfarm"] for r in p["serverfarms"]] == ["web"]

    e.state.set_admin_inservice("Admin", "lnx1", False)
    landed = Counter()
    outcomes = Counter()
    for c in on_lnx1:
        d = e.visit(c, WEB)
        landed[d.member.rserver] += 1
        outcomes[d.outcome] += 1
    assert dict(landed) == web["to"] and dict(outcomes) == {"buddy_hit": web["follow_buddy"]}


def test_tiers_app_clients_restick_where_predicted():
    e = Engine.from_text(TIERS)
    for c in CLIENTS:
        e.visit(c, WEB)
        e.visit(c, APP)
    p = preview(e, "db1", farm="app")
    app = row(p, "app")
    assert app["entries"] == 20 and app["restick"] == 20 and app["to"] == {"db2": 20.0}
    e.state.set_admin_inservice("Admin", "db1", False)
    moved = [c for c in CLIENTS if e.tables["Admin"].lookup("tiers", _key(e, c), e.now).farms[1] == "db1"]
    assert len(moved) == 20
    assert Counter(e.visit(c, APP).member.rserver for c in moved) == Counter({"db2": 20})


def _key(e: Engine, client: str):
    from buddylb.core.keys import ip_key

    return ip_key(e.snap.contexts["Admin"].scopes["tiers"], client, "127.0.0.100")


THREE = (
    _hosts("lnx1", "lnx2", "lnx3")
    + _farm("web", [("lnx1", 8080, "a"), ("lnx2", 8080, "b"), ("lnx3", 8080, "c")])
    + _sticky("s-web", "web", "solo-scope")
    + _vips(("v-web", 80, "s-web"))
)


def test_predictor_spread_by_weight_comes_true_in_aggregate():
    e = Engine.from_text(THREE)
    on_lnx1 = [c for c in CLIENTS if e.visit(c, WEB).member.rserver == "lnx1"]
    p = preview(e, "lnx1")
    web = row(p, "web")
    n = web["entries"]
    assert n == len(on_lnx1) == 14  # round-robin over three: clients 0, 3, ... 39
    assert web["restick"] == n and web["to"] == {"lnx2": n / 2, "lnx3": n / 2}
    e.state.set_admin_inservice("Admin", "lnx1", False)
    landed = Counter(e.visit(c, WEB).member.rserver for c in on_lnx1)
    assert set(landed) == {"lnx2", "lnx3"}
    for rs, expected in web["to"].items():
        assert abs(landed[rs] - expected) <= 1, (landed, web["to"])


def test_one_to_one_both_farms_and_nothing_changes():
    e = Engine.from_text(ONE_TO_ONE)
    for c in CLIENTS[:10]:
        e.visit(c, HTTP)
        e.visit(c, HTTPS)
    before = {k: (v.last, v.farms) for _st, k, v in e.table.items(e.now)}
    counters = e.table.counters.as_dict()
    p = preview(e, "lnx1")
    assert [r["serverfarm"] for r in p["serverfarms"]] == ["http", "decrypted"]
    http, dec = row(p, "http"), row(p, "decrypted")
    # no other member of blue in either farm: every client re-sticks on lnx2
    assert http["entries"] == dec["entries"] == 5
    assert http["to"] == dec["to"] == {"lnx2": 5.0} and http["restick"] == dec["restick"] == 5
    # the preview moved nothing: entries, counters, availability
    assert {k: (v.last, v.farms) for _st, k, v in e.table.items(e.now)} == before
    assert e.table.counters.as_dict() == counters
    assert not e.state.admin_out("Admin", "lnx1")


def test_unknown_names_are_refused():
    import pytest

    from buddylb.errors import CommandError

    e = Engine.from_text(ONE_TO_ONE)
    with pytest.raises(CommandError, match='rserver "lnx9" does not exist'):
        preview(e, "lnx9")
    with pytest.raises(CommandError, match='not in serverfarm "web"'):
        preview(e, "lnx1", farm="web")
