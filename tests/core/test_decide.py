"""SPEC §3, rule by rule, and the four seed scenarios at engine level."""
from __future__ import annotations

import pytest

from tests.core.configs import ASYMMETRIC, HTTP, HTTPS, MERGE, ONE_TO_ONE, TIERS
from tests.core.engine import Engine

CLIENTS = [f"127.0.0.{n}" for n in range(10, 22)]


def rs(d) -> str:
    return d.member.rserver if d.member else None


# -- rule 1 -----------------------------------------------------------------------
NO_STICKY = """
rserver host a
  ip address 127.0.1.1
  inservice
rserver host b
  ip address 127.0.1.2
  weight 3
  inservice
serverfarm host plain
  rserver a 80
    inservice
  rserver b 80
    inservice
class-map match-all v
  2 match virtual-address 127.0.0.100 tcp eq 80
policy-map type loadbalance first-match p
  class class-default
    serverfarm plain
policy-map multi-match int
  class v
    loadbalance vip inservice
    loadbalance policy p
service-policy input int
"""


def test_rule1_no_sticky_group_uses_weighted_predictor():
    e = Engine.from_text(NO_STICKY)
    picks = [rs(e.visit("127.0.0.10", HTTP)) for _ in range(11)]
    assert all(e.visit("127.0.0.10", HTTP).outcome == "no_sticky" for _ in range(3))
    # weights 8 and 3 -> 8:3 over one full cycle of 11
    assert picks.count("a") == 8 and picks.count("b") == 3
    assert e.table.size == 0


def test_rule2_new_entry_is_stored():
    e = Engine.from_text(ONE_TO_ONE)
    d = e.visit("127.0.0.10", HTTP)
    assert d.outcome == "new"
    assert e.table.size == 1
    assert d.port == 8080


def test_rule3_same_farm_sticky_hit():
    e = Engine.from_text(ONE_TO_ONE)
    first = rs(e.visit("127.0.0.10", HTTP))
    for _ in range(5):
        d = e.visit("127.0.0.10", HTTP)
        assert d.outcome == "sticky_hit" and rs(d) == first


def test_rule4_buddy_in_other_farm_with_pat():
    e = Engine.from_text(ONE_TO_ONE)
    for c in CLIENTS:
        d1 = e.visit(c, HTTP)
        d2 = e.visit(c, HTTPS)
        assert d2.outcome == "buddy_hit"
        assert rs(d1) == rs(d2)
        assert (d1.port, d2.port) == (8080, 8443)
    assert {rs(e.visit(c, HTTP)) for c in CLIENTS} == {"lnx1", "lnx2"}


def test_rule4_remembered_rserver_preferred_among_candidates():
    e = Engine.from_text(TIERS)
    web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
    for c in CLIENTS:
        first = rs(e.visit(c, web))
        db = rs(e.visit(c, app))
        assert db == ("db1" if first in ("lnx1", "lnx2") else "db2")
        back = e.visit(c, web)
        assert back.outcome == "buddy_hit" and rs(back) == first  # returns to the web server it had


def test_rule5_buddy_unavailable_restick_then_entry_kept_until_client_moves():
    e = Engine.from_text(ONE_TO_ONE)
    c = "127.0.0.10"
    first = rs(e.visit(c, HTTP))
    other = "lnx2" if first == "lnx1" else "lnx1"
    e.down("Admin", "decrypted", first)
    d = e.visit(c, HTTPS)
    assert d.outcome == "restick" and rs(d) == other
    # buddy back in service: the entry is unchanged, the client stays where it is now
    e.up("Admin", "decrypted", first)
    again = e.visit(c, HTTPS)
    assert again.outcome == "sticky_hit" and rs(again) == other
    # when it moves back to http it follows its latest server's buddy
    back = e.visit(c, HTTP)
    assert back.outcome == "buddy_hit" and rs(back) == other


def test_rule5_remembered_rserver_when_no_buddy_available():
    e = Engine.from_text(TIERS)
    web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
    c = "127.0.0.10"
    first = rs(e.visit(c, web))
    db = rs(e.visit(c, app))
    for m in (["lnx1", "lnx2"] if db == "db1" else ["lnx3", "lnx4"]):
        e.down("Admin", "web", m)
    d = e.visit(c, web)
    assert d.outcome == "restick" and rs(d) != first
    e.up("Admin", "web", first)
    # last is now web/<other>; the first server is back but the client stays
    assert rs(e.visit(c, web)) == rs(d)


def test_rule6_no_server_stores_nothing():
    e = Engine.from_text(ONE_TO_ONE)
    for m in ("lnx1", "lnx2"):
        e.down("Admin", "http", m)
    d = e.visit("127.0.0.10", HTTP)
    assert d.outcome == "no_server" and d.member is None and not d.queue
    assert e.table.size == 0


BACKUP_FARM = ONE_TO_ONE.replace(
    "sticky ip-netmask 255.255.255.255 address both stick-cart\n  timeout 30\n  serverfarm http\n",
    "sticky ip-netmask 255.255.255.255 address both stick-cart\n  timeout 30\n  serverfarm http backup decrypted\n",
)


def test_rule6_backup_farm_decided_by_same_rules():
    e = Engine.from_text(BACKUP_FARM)
    for m in ("lnx1", "lnx2"):
        e.down("Admin", "http", m)
    d = e.visit("127.0.0.10", HTTP)
    assert d.farm.name == "decrypted" and d.outcome == "new"
    assert e.visit("127.0.0.10", HTTP).outcome == "sticky_hit"


CONN_LIMIT = NO_STICKY.replace("  rserver a 80\n    inservice", "  rserver a 80\n    conn-limit max 2 min 1\n    inservice").replace(
    "  rserver b 80\n    inservice", "  rserver b 80\n    conn-limit max 1\n    inservice")


def test_rule6_queue_when_only_connection_limits_hold():
    e = Engine.from_text(CONN_LIMIT)
    held = [e.connect("127.0.0.10", HTTP) for _ in range(3)]
    assert all(d.member for d in held)
    d = e.connect("127.0.0.10", HTTP)
    assert d.outcome == "no_server" and d.queue
    # hysteresis: a closes one (2 -> 1) but min is 1: still limited until below 1
    a_conns = [h for h in held if rs(h) == "a"]
    e.close(a_conns[0])
    assert e.connect("127.0.0.10", HTTP).queue
    e.close(a_conns[1])
    assert rs(e.connect("127.0.0.10", HTTP)) == "a"


def test_backup_member_only_when_no_primary():
    text = NO_STICKY.replace("  rserver b 80\n    inservice", "  rserver b 80\n    backup\n    inservice")
    e = Engine.from_text(text)
    assert {rs(e.visit("127.0.0.10", HTTP)) for _ in range(6)} == {"a"}
    e.down("Admin", "plain", "a")
    assert rs(e.visit("127.0.0.10", HTTP)) == "b"


# -- the four seed scenarios ------------------------------------------------------
def test_seed_one_to_one_never_a_mix():
    e = Engine.from_text(ONE_TO_ONE)
    for c in CLIENTS:
        servers = {rs(e.visit(c, vip)) for vip in (HTTP, HTTPS, HTTP, HTTPS, HTTPS)}
        assert len(servers) == 1


def test_seed_asymmetric():
    e = Engine.from_text(ASYMMETRIC)
    foo, bar, foobar = ("127.0.0.100", 81), ("127.0.0.100", 82), ("127.0.0.100", 83)
    for i, c in enumerate(CLIENTS):
        if i % 2:
            assert rs(e.visit(c, foo)) == "lnx1"
            assert [rs(e.visit(c, foobar)) for _ in range(3)] == ["lnx1"] * 3
        else:
            assert rs(e.visit(c, bar)) == "lnx2"
            assert [rs(e.visit(c, foobar)) for _ in range(3)] == ["lnx2"] * 3


def test_seed_many_to_one_tiers():
    e = Engine.from_text(TIERS)
    web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
    seen = set()
    for c in CLIENTS:
        w = rs(e.visit(c, web))
        seen.add(w)
        for _ in range(3):
            assert rs(e.visit(c, app)) == ("db1" if w in ("lnx1", "lnx2") else "db2")
            assert rs(e.visit(c, web)) == w
    assert seen == {"lnx1", "lnx2", "lnx3", "lnx4"}


def test_seed_netmask_and_timeout_merge():
    e = Engine.from_text(MERGE)
    scope = e.snap.contexts["Admin"].scopes["merged"]
    assert scope.prefix4 == 32 and scope.timeout_s == 30 * 60
    v1, v2 = ("127.0.0.100", 81), ("127.0.0.100", 82)
    a, b = "127.0.0.10", "127.0.0.11"  # same /24
    da, db = e.visit(a, v1), e.visit(b, v1)
    assert rs(da) != rs(db)  # keyed separately (round robin gave them different servers)
    assert rs(e.visit(a, v2)) == rs(da) and rs(e.visit(b, v2)) == rs(db)
    assert e.table.size == 2
    e.now += 30 * 60 - 1
    assert e.visit(a, v1).outcome == "buddy_hit"  # last farm was f2; still alive at 30 min - 1 s
    e.now += 30 * 60 + 1
    assert e.visit(b, v2).outcome == "new"  # b's entry expired after 30 minutes, not 100


def test_decision_counts_reach_stats():
    e = Engine.from_text(ONE_TO_ONE)
    for c in CLIENTS[:4]:
        e.visit(c, HTTP)
        e.visit(c, HTTPS)
        e.visit(c, HTTPS)
    c = e.table.counters
    assert (c.misses, c.buddy_hits, c.hits) == (4, 4, 4)


@pytest.mark.parametrize("predictor", ["leastconns", "hash address source 255.255.255.0"])
def test_other_predictors_choose_only_available(predictor):
    e = Engine.from_text(NO_STICKY.replace("serverfarm host plain\n", f"serverfarm host plain\n  predictor {predictor}\n"))
    e.down("Admin", "plain", "b")
    assert {rs(e.visit(f"127.0.0.{n}", HTTP)) for n in range(10, 30)} == {"a"}


def test_leastconns_prefers_idle_and_breaks_ties_round_robin():
    e = Engine.from_text(NO_STICKY.replace("serverfarm host plain\n", "serverfarm host plain\n  predictor leastconns\n")
                         .replace("  weight 3\n", ""))
    held = e.connect("127.0.0.10", HTTP)
    assert rs(e.connect("127.0.0.11", HTTP)) != rs(held)
    e2 = Engine.from_text(NO_STICKY.replace("serverfarm host plain\n", "serverfarm host plain\n  predictor leastconns\n"))
    assert [rs(e2.visit("127.0.0.10", HTTP)) for _ in range(4)] == ["a", "b", "a", "b"]


def test_hash_predictor_is_stable_per_subnet():
    e = Engine.from_text(NO_STICKY.replace("serverfarm host plain\n",
                                           "serverfarm host plain\n  predictor hash address source 255.255.255.0\n"))
    assert len({rs(e.visit(f"10.1.2.{n}", HTTP)) for n in range(1, 40)}) == 1
    assert len({rs(e.visit(f"10.1.{n}.1", HTTP)) for n in range(1, 40)}) == 2


def _explained(e: Engine, c: str, vip: tuple[str, int]):
    """What resolve_class() (the explain view's function) says the next decision is."""
    from buddylb.core.decide import ip_key, resolve_class

    v = e.vip(*vip)
    p = v.policy.classes[0].plan
    entry = p.table.lookup(p.scope_name, ip_key(p.scope, c, v.address), e.now)
    farm, res = resolve_class(p.ctx, e.state, p.scope, p.farms, entry)
    return farm.name, res


@pytest.mark.parametrize("drain", [None, "lnx1"])
def test_rule4_decisions_match_resolve_class_rule_text_included(drain):
    """decide() reads rule 4 from its per-class Plan; resolve_class() (explain) from the
    snapshot: same outcome, farm, rserver and rule text, kept and picked, draining or not."""
    e = Engine.from_text(TIERS)
    web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
    e.visit(CLIENTS[0], web)  # makes both plans
    e.visit(CLIENTS[0], app)
    if drain:
        e.state.set_admin_drain("Admin", drain)
    seen = set()
    for c in CLIENTS:
        for vip in (app, web, app, web):
            farm, res = _explained(e, c, vip)
            d = e.visit(c, vip)
            assert (d.outcome, d.farm.name, d.rule) == (res.outcome, farm, res.rule)
            if res.member is not None:
                assert d.member.rserver == res.member.rserver
            else:
                assert d.member.rserver in {m.rserver for m in res.candidates}
            seen.add((d.outcome, d.rule[:20]))
    assert ("buddy_hit", "4: remembered rserve") in seen and ("buddy_hit", "4: predictor among b") in seen


TIERS_LIMITED = TIERS.replace("  rserver lnx1 8080\n", "  rserver lnx1 8080\n    conn-limit max 1\n").replace(
    "  rserver db1 9000\n", "  rserver db1 9000\n    conn-limit max 1\n")


@pytest.mark.parametrize("change", ["probe", "admin", "drain", "limit"])
def test_plan_fast_paths_match_resolve_class_while_members_change(change):
    """decide()'s rule-3 and rule-4 fast paths read availability from the Plan's Picks
    (cached cells and member flags), resolve_class() from the snapshot through RuntimeState:
    each decision agrees with it while rservers fail probes, are taken out of service,
    drain, or reach their connection limit, and come back."""
    e = Engine.from_text(TIERS_LIMITED)
    web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
    for c in CLIENTS:
        e.visit(c, web)
        e.visit(c, app)
    held = []

    def disturb(rserver: str, on: bool) -> None:
        farm = "app" if rserver.startswith("db") else "web"
        if change == "probe":
            (e.down if on else e.up)("Admin", farm, rserver)
        elif change == "admin":
            e.state.set_admin_inservice("Admin", rserver, not on)
        elif change == "drain":
            if on:
                e.state.set_admin_drain("Admin", rserver)
            else:
                e.state.set_admin_inservice("Admin", rserver, True)
        elif on:  # limit: hold one connection on it (conn-limit max 1 on lnx1 and db1)
            for c in CLIENTS:
                d = e.connect(c, web if farm == "web" else app)
                if d.member.rserver == rserver:
                    held.append(d)
                    break
                e.close(d)
        else:
            while held:
                e.close(held.pop())

    seen = set()
    for rserver in ("lnx1", "db1", "lnx3", None):
        if rserver is not None:
            disturb(rserver, True)
        for c in CLIENTS:
            for vip in (app, web, web, app):
                farm, res = _explained(e, c, vip)
                d = e.visit(c, vip)
                assert (d.outcome, d.farm.name, d.rule) == (res.outcome, farm, res.rule), (change, rserver, c)
                if res.member is not None:
                    assert d.member.rserver == res.member.rserver
                else:
                    assert d.member.rserver in {m.rserver for m in res.candidates}
                seen.add(d.outcome)
        if rserver is not None:
            disturb(rserver, False)
    assert {"sticky_hit", "buddy_hit"} <= seen


RULE2_TEXT = BACKUP_FARM.replace(
    "serverfarm host http\n", "rserver host lnx3\n  ip address 127.0.1.13\n  inservice\nserverfarm host http\n").replace(
    "    buddy-group red\n    inservice\nserverfarm host decrypted\n",
    "    buddy-group red\n    inservice\n  rserver lnx3 8080\n    buddy-group red\n    backup\n    conn-limit max 1\n    inservice\n"
    "serverfarm host decrypted\n")


@pytest.mark.parametrize("change", ["probe", "admin", "drain"])
def test_rule2_fast_path_matches_resolve_class_while_members_change(change):
    """A new IPv4 client's decision (rule 2 read from the Plan's Picks, core.avail) is
    what resolve_class() says, rule text included, while the primaries fail probes, are
    taken out of service or drain, down to the backup member (conn-limit max 1: held,
    the backup farm) — a draining rserver never gets a new client."""
    from buddylb.core.decide import resolve_class

    e = Engine.from_text(RULE2_TEXT)
    web = ("127.0.0.100", 80)
    clients = iter(f"127.0.{a}.{b}" for a in range(2, 9) for b in range(1, 250))

    def disturb(rserver: str) -> None:
        if change == "probe":
            e.down("Admin", "http", rserver)
        elif change == "admin":
            e.state.set_admin_inservice("Admin", rserver, False)
        else:
            e.state.set_admin_drain("Admin", rserver)

    e.visit(next(clients), web)  # the class's Plan is made by its first decision
    seen = set()
    held = []
    for step in (None, "lnx1", "lnx2", "hold"):
        if step == "hold":
            held.append(e.connect(next(clients), web))  # lnx3 at its limit: the backup farm
        elif step is not None:
            disturb(step)
        for _ in range(6):
            c = next(clients)
            p = e.vip(*web).policy.classes[0].plan
            farm, res = resolve_class(p.ctx, e.state, p.scope, p.farms, None)  # a new client: no entry
            d = e.visit(c, web)
            if farm is None:  # hosts out of service or draining in both farms (admin, drain)
                assert d.outcome == "no_server" and change != "probe"
                seen.add(("none", None))
                continue
            assert (d.outcome, d.farm.name, d.rule) == (res.outcome, farm.name, res.rule), (change, step)
            assert d.outcome == "new" and d.member.rserver in {m.rserver for m in res.candidates}
            assert e.table.peek(d.scope.name, d.key, e.now).last_rserver == d.member.rserver
            seen.add((farm.name, d.member.rserver))
    assert {("http", "lnx1"), ("http", "lnx2"), ("http", "lnx3")} <= seen
    assert ("decrypted" in {farm for farm, _ in seen}) == (change == "probe")
    for d in held:
        e.close(d)
