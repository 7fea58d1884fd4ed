"""The SPEC §3 acceptance configurations, written for loopback (built with the e2e
configuration builders, tests/e2e/configs.py, so both suites write objects one way)."""
from __future__ import annotations

from tests.e2e.configs import farm as _farm
from tests.e2e.configs import hosts as _hosts
from tests.e2e.configs import service, vip_policy
from tests.e2e.configs import sticky_ip as _sticky

HTTP = ("127.0.0.100", 80)
HTTPS = ("127.0.0.100", 443)

ONE_TO_ONE = """
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  inservice
serverfarm host http
  predictor roundrobin
  rserver lnx1 8080
    buddy-group blue
    inservice
  rserver lnx2 8080
    buddy-group red
    inservice
serverfarm host decrypted
  rserver lnx1 8443
    buddy-group blue
    inservice
  rserver lnx2 8443
    buddy-group red
    inservice
sticky ip-netmask 255.255.255.255 address both stick-cart
  timeout 30
  serverfarm http
  buddy-group alpha
sticky ip-netmask 255.255.255.255 address both stick-credit
  timeout 30
  serverfarm decrypted
  buddy-group alpha
class-map match-all http-vip
  2 match virtual-address 127.0.0.100 tcp eq www
class-map match-all https-vip
  2 match virtual-address 127.0.0.100 tcp eq https
policy-map type loadbalance first-match http-sticky
  class class-default
    sticky-serverfarm stick-cart
policy-map type loadbalance first-match https-sticky
  class class-default
    sticky-serverfarm stick-credit
policy-map multi-match int
  class http-vip
    loadbalance vip inservice
    loadbalance policy http-sticky
  class https-vip
    loadbalance vip inservice
    loadbalance policy https-sticky
service-policy input int
"""


def _vips(*vips: tuple[str, int, str]) -> str:
    """(class name, port, sticky group) on 127.0.0.100: L4 VIPs, each sticky to its group."""
    return service(*(vip_policy(name, port, sticky) for name, port, sticky in vips))


ASYMMETRIC = (
    _hosts("lnx1", "lnx2")
    + _farm("foo", [("lnx1", 8001, "blue")])
    + _farm("bar", [("lnx2", 8002, "red")])
    + _farm("foobar", [("lnx1", 8003, "blue"), ("lnx2", 8003, "red")])
    + _sticky("s-foo", "foo", "alpha") + _sticky("s-bar", "bar", "alpha") + _sticky("s-foobar", "foobar", "alpha")
    + _vips(("v-foo", 81, "s-foo"), ("v-bar", 82, "s-bar"), ("v-foobar", 83, "s-foobar"))
)

TIERS = (
    _hosts("lnx1", "lnx2", "lnx3", "lnx4", "db1", "db2")
    + _farm("web", [("lnx1", 8080, "blue"), ("lnx2", 8080, "blue"), ("lnx3", 8080, "red"), ("lnx4", 8080, "red")])
    + _farm("app", [("db1", 9000, "blue"), ("db2", 9000, "red")])
    + _sticky("s-web", "web", "tiers") + _sticky("s-app", "app", "tiers")
    + _vips(("v-web", 80, "s-web"), ("v-app", 9000, "s-app"))
)

MERGE = (
    _hosts("lnx1", "lnx2")
    + _farm("f1", [("lnx1", 8001, "blue"), ("lnx2", 8001, "red")])
    + _farm("f2", [("lnx1", 8002, "blue"), ("lnx2", 8002, "red")])
    + _sticky("SG1", "f1", "merged", mask="255.255.255.255", timeout="100")
    + _sticky("SG2", "f2", "merged", mask="255.255.255.0", timeout="30")
    + _vips(("v1", 81, "SG1"), ("v2", 82, "SG2"))
)
