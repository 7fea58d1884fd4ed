"""`static cookie-value V rserver R [PORT]` (ACE): a cookie value always means one rserver
while it is available; otherwise the ordinary rules decide (SPEC §3)."""
from __future__ import annotations

from tests.config.support import diagnose
from tests.core.engine import Engine

CONFIG = """\
rserver host s1
  ip address 127.0.1.31
  inservice
rserver host s2
  ip address 127.0.1.32
  inservice
serverfarm host web
  rserver s1 80
    inservice
  rserver s2 80
    inservice
sticky http-cookie JSESSIONID learned
  static cookie-value "pin-s2" rserver s2 80
  serverfarm web
class-map match-all v
  2 match virtual-address 127.0.0.102 tcp eq 80
policy-map type loadbalance first-match lb
  class class-default
    sticky-serverfarm learned
policy-map multi-match pm
  class v
    loadbalance vip inservice
    loadbalance policy lb
service-policy input pm
"""
VIP = ("127.0.0.102", 80)


def test_static_cookie_value_pins_the_rserver_while_it_is_available() -> None:
    e = Engine.from_text(CONFIG)
    assert e.vip(*VIP).policy.http  # cookie stickiness made the default policy L7
    for n in range(4):
        d = e.visit(f"127.0.0.{10 + n}", VIP, url="/", cookies={"JSESSIONID": "pin-s2"})
        assert (d.outcome, d.member.rserver, d.rule) == ("sticky_hit", "s2", "static cookie-value")
    e.down("Admin", "web", "s2")
    d = e.visit("127.0.0.10", VIP, url="/", cookies={"JSESSIONID": "pin-s2"})
    assert d.member is not None and d.member.rserver == "s1" and d.rule != "static cookie-value"
    other = e.visit("127.0.0.10", VIP, url="/", cookies={"JSESSIONID": "something-else"})
    assert other.rule != "static cookie-value"


def test_static_cookie_value_must_name_a_member_of_the_farm() -> None:
    _, diagnostics = diagnose(CONFIG.replace('rserver s2 80\n  serverfarm', 'rserver s3 80\n  serverfarm'))
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert error.line == 13 and 'names rserver "s3" on port 80, which is not in its serverfarm' in error.message
