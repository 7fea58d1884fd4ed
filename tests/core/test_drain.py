"""Drain (README "Drain"): a draining rserver keeps the clients the sticky database ties
to it and gets no new client, as HAProxy's `set server state drain`.

Each test decides real flows through `decide()` (tests.core.engine) on the SPEC §3
acceptance configurations, drains a host with `RuntimeState.set_admin_drain`, and checks
where stuck and new clients go.
"""
from __future__ import annotations

from collections import Counter

from buddylb.core.decide import available_members
from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE, TIERS, _farm, _hosts, _sticky, _vips
from tests.core.engine import Engine

WEB, APP = ("127.0.0.100", 80), ("127.0.0.100", 9000)
CLIENTS = [f"127.0.0.{n}" for n in range(10, 40)]
NEWCOMERS = [f"127.0.2.{n}" for n in range(10, 40)]


def test_stuck_clients_stay_and_new_clients_avoid_the_draining_rserver():
    e = Engine.from_text(ONE_TO_ONE)
    first = {c: e.visit(c, HTTP).member.rserver for c in CLIENTS}
    on_lnx1 = [c for c, rs in first.items() if rs == "lnx1"]
    assert 10 <= len(on_lnx1) <= 20
    e.state.set_admin_drain("Admin", "lnx1")
    for c in on_lnx1:
        d = e.visit(c, HTTP)
        assert (d.member.rserver, d.outcome) == ("lnx1", "sticky_hit")
    assert Counter(e.visit(c, HTTP).member.rserver for c in NEWCOMERS) == Counter({"lnx2": len(NEWCOMERS)})
    assert e.state.state_name(e.snap.contexts["Admin"].farms["http"].by_rserver["lnx1"]) == "DRAINING"
    assert e.state.admin_state("Admin", "lnx1") == "DRAIN"


def test_a_stuck_client_follows_its_buddy_onto_the_draining_host_in_another_farm():
    """Persistence across farms is persistence: the client's session lives on lnx1."""
    e = Engine.from_text(ONE_TO_ONE)
    first = {c: e.visit(c, HTTP).member.rserver for c in CLIENTS}
    e.state.set_admin_drain("Admin", "lnx1")
    for c, rs in first.items():
        d = e.visit(c, HTTPS)
        assert (d.member.rserver, d.outcome) == (rs, "buddy_hit")


def test_inservice_and_outofservice_end_a_drain():
    e = Engine.from_text(ONE_TO_ONE)
    farm = e.snap.contexts["Admin"].farms["http"]
    e.state.set_admin_drain("Admin", "lnx1")
    assert [m.rserver for m in available_members(farm, e.state)] == ["lnx2"]
    e.state.set_admin_inservice("Admin", "lnx1", True)
    assert [m.rserver for m in available_members(farm, e.state)] == ["lnx1", "lnx2"]
    assert e.state.admin_state("Admin", "lnx1") == "INSERVICE"
    e.state.set_admin_drain("Admin", "lnx1")
    e.state.set_admin_inservice("Admin", "lnx1", False)
    assert e.state.admin_state("Admin", "lnx1") == "OUTOFSERVICE" and not e.state.draining


def test_every_primary_draining_sends_new_clients_to_no_server_and_keeps_the_stuck():
    e = Engine.from_text(ONE_TO_ONE)
    old = e.visit(CLIENTS[0], HTTP).member.rserver
    e.state.set_admin_drain("Admin", "lnx1")
    e.state.set_admin_drain("Admin", "lnx2")
    assert e.visit(CLIENTS[0], HTTP).member.rserver == old
    d = e.visit(NEWCOMERS[0], HTTP)
    assert d.outcome == "no_server" and not d.queue


def test_buddy_pick_prefers_members_taking_new_clients():
    """tiers: blue = {lnx1, lnx2} in web, db1 in app.  A client that reached web through db1
    for the first time (no remembered web server) gets lnx2 while lnx1 drains."""
    e = Engine.from_text(TIERS)
    on_db1 = [c for c in CLIENTS if e.visit(c, APP).member.rserver == "db1"]
    assert on_db1
    e.state.set_admin_drain("Admin", "lnx1")
    for c in on_db1:
        d = e.visit(c, WEB)
        assert (d.member.rserver, d.outcome) == ("lnx2", "buddy_hit")


def test_buddy_pick_follows_the_group_when_every_buddy_drains():
    e = Engine.from_text(TIERS)
    on_db1 = [c for c in CLIENTS if e.visit(c, APP).member.rserver == "db1"]
    e.state.set_admin_drain("Admin", "lnx1")
    e.state.set_admin_drain("Admin", "lnx2")
    assert {e.visit(c, WEB).member.rserver for c in on_db1} <= {"lnx1", "lnx2"}
    assert {e.visit(c, WEB).member.rserver for c in NEWCOMERS} <= {"lnx3", "lnx4"}


BACKUP = (
    _hosts("lnx1", "lnx9")
    + _farm("web", [("lnx1", 8080, "blue")])
    + "  rserver lnx9 8080\n    buddy-group green\n    backup\n    inservice\n"
    + _sticky("s-web", "web", "solo")
    + _vips(("v-web", 80, "s-web"))
)


def test_draining_primaries_hand_new_clients_to_the_backup_rserver():
    e = Engine.from_text(BACKUP)
    old = e.visit(CLIENTS[0], WEB)
    assert old.member.rserver == "lnx1"
    e.state.set_admin_drain("Admin", "lnx1")
    assert e.visit(CLIENTS[0], WEB).member.rserver == "lnx1"
    assert e.visit(NEWCOMERS[0], WEB).member.rserver == "lnx9"
