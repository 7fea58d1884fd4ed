"""The explain view on cookie and header scopes, and `show rserver`'s two states, in process.

The engine decides real flows (tests.core.engine); the views read the same objects the
admin API would, so what the explain view says is checked against what decide() does.
"""
from __future__ import annotations

import pytest

from buddylb.admin.explain import show_sticky_client
from buddylb.admin.render import render_sticky_client
from buddylb.admin.views import show_rserver
from buddylb.core import cookie as sticky_cookie
from buddylb.errors import CommandError
from tests.core.engine import Engine

SECRET = b"k" * 32  # tests.core.engine signs with this secret
WALL = 1_700_000_000.0

L7 = """
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  inservice
serverfarm host http
  rserver lnx1 8080
    buddy-group blue
    weight 50
    inservice
  rserver lnx2 8080
    buddy-group red
    inservice
serverfarm host api
  rserver lnx1 9090
    buddy-group blue
    inservice
  rserver lnx2 9090
    buddy-group red
    inservice
sticky http-cookie SRV cart-cookie
  cookie insert
  timeout 30
  serverfarm http
  buddy-group carts
sticky http-cookie SRV api-cookie
  cookie insert
  timeout 30
  serverfarm api
  buddy-group carts
sticky http-header X-Session hdr
  timeout 30
  serverfarm api
class-map match-all web-vip
  2 match virtual-address 127.0.0.100 tcp eq 80
class-map match-all api-vip
  2 match virtual-address 127.0.0.100 tcp eq 81
class-map match-all hdr-vip
  2 match virtual-address 127.0.0.100 tcp eq 82
policy-map type loadbalance http first-match web-lb
  class class-default
    sticky-serverfarm cart-cookie
policy-map type loadbalance http first-match api-lb
  class class-default
    sticky-serverfarm api-cookie
policy-map type loadbalance http first-match hdr-lb
  class class-default
    sticky-serverfarm hdr
policy-map multi-match int
  class web-vip
    loadbalance vip inservice
    loadbalance policy web-lb
  class api-vip
    loadbalance vip inservice
    loadbalance policy api-lb
  class hdr-vip
    loadbalance vip inservice
    loadbalance policy hdr-lb
service-policy input int
"""
WEB, API, HDR = ("127.0.0.100", 80), ("127.0.0.100", 81), ("127.0.0.100", 82)


def explain(e: Engine, value: str) -> list[dict]:
    return show_sticky_client(e.snap, e.state, e.tables, e.now, value, secret=SECRET, wall=WALL)


def test_cookie_value_explains_every_farm_of_the_buddy_sticky_group():
    e = Engine.from_text(L7)
    d = e.visit("127.0.0.5", WEB, wall=WALL)
    token = d.set_cookie
    assert token and d.outcome == "new"
    served = d.member.rserver
    views = explain(e, token)
    assert [v["scope"] for v in views] == ["carts", "hdr"]  # a header value could be anything
    view = views[0]
    assert (view["scope"], view["type"], view["buddy"]) == ("carts", "http-cookie", True)
    assert view["entry"]["last_serverfarm"] == "http" and view["entry"]["last_rserver"] == served
    api = {f["serverfarm"]: f for f in view["serverfarms"]}["api"]
    assert (api["outcome"], api["candidates"]) == ("buddy_hit", [served])  # the one buddy in api
    # what it said is what the data path does next
    d2 = e.visit("127.0.0.99", API, cookies={"SRV": token}, wall=WALL)
    assert (d2.outcome, d2.member.rserver) == ("buddy_hit", served)
    # the client id `show sticky database` prints works as well as the token
    cid = sticky_cookie.verify(SECRET, "carts", token, WALL, 1800)[0]
    assert explain(e, cid)[0]["entry"]["last_serverfarm"] == "api"
    assert "scope carts (buddy) (http-cookie)" in render_sticky_client(explain(e, token))


def test_header_value_explains_its_scope():
    e = Engine.from_text(L7)
    d = e.visit("127.0.0.5", HDR, headers={"x-session": "abc-123"})
    (view,) = [v for v in explain(e, "abc-123") if v["scope"] == "hdr"]
    assert view["entry"]["last_rserver"] == d.member.rserver
    assert view["serverfarms"][0]["outcome"] == "sticky_hit"
    # an unknown value is a new client there, and the view says so
    (new,) = [v for v in explain(e, "never-seen") if v["scope"] == "hdr"]
    assert new["entry"] is None and new["serverfarms"][0]["outcome"] == "new"


def test_forged_cookie_is_no_client_and_address_skips_value_scopes():
    e = Engine.from_text(L7)
    e.visit("127.0.0.5", HDR, headers={"x-session": "abc-123"})
    assert [v["scope"] for v in explain(e, "not-a-token")] == ["hdr"]  # a header value can be anything
    assert explain(e, "127.0.0.5") == []  # no ip scope; no value scope holds it
    e.visit("127.0.0.5", HDR, headers={"x-session": "127.0.0.9"})
    assert [v["scope"] for v in explain(e, "127.0.0.9")] == ["hdr"]  # listed once an entry has it


def test_value_without_value_scopes_is_refused():
    from tests.core.configs import ONE_TO_ONE

    e = Engine.from_text(ONE_TO_ONE)
    with pytest.raises(CommandError, match='"abc" is not an IP address'):
        explain(e, "abc")


def test_show_rserver_farm_weight_and_operational_state():
    e = Engine.from_text(L7)
    (lnx1,) = show_rserver(e.snap, e.state, "lnx1")
    assert lnx1["host_weight"] == 8
    assert {f["serverfarm"]: f["weight"] for f in lnx1["serverfarms"]} == {"http": 50, "api": 8}
    assert (lnx1["admin_state"], lnx1["state"]) == ("INSERVICE", "OPERATIONAL")
    e.down("Admin", "http", "lnx1")
    (lnx1,) = show_rserver(e.snap, e.state, "lnx1")
    assert (lnx1["admin_state"], lnx1["state"]) == ("INSERVICE", "PROBE-FAILED(http)")
    e.down("Admin", "api", "lnx1")
    assert show_rserver(e.snap, e.state, "lnx1")[0]["state"] == "PROBE-FAILED"
    e.state.set_admin_inservice("Admin", "lnx1", False)
    (lnx1,) = show_rserver(e.snap, e.state, "lnx1")
    assert (lnx1["admin_state"], lnx1["state"], lnx1["operator_out"]) == ("OUTOFSERVICE", "OUTOFSERVICE", True)
