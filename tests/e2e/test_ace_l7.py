"""ACE L7 features end to end (SPEC §2.1, §2.4): a policy without a protocol word becomes
an L7 proxy when a class inserts HTTP headers, and `insert-http` fills ACE's %is %id
%ps %pd per request."""
from __future__ import annotations

from tests.e2e.configs import farm, hosts
from tests.e2e.conftest import VIP
from tests.support.net import connect_from, parse_response, read_all


def test_insert_http_makes_the_default_policy_l7_and_fills_variables(ports, backends, balancer):
    web = backends.http("lnx1", "127.0.1.11", ports["a"])
    text = hosts("lnx1") + farm("web", [("lnx1", ports["a"], None)])
    text += f"""\
class-map match-all V
  2 match virtual-address {VIP} tcp eq {ports['vip']}
policy-map type loadbalance first-match LB
  class class-default
    serverfarm web
    insert-http X-Client header-value "%is:%ps"
    insert-http X-Vip header-value "vip=%id port=%pd"
policy-map multi-match PM
  class V
    loadbalance vip inservice
    loadbalance policy LB
service-policy input PM
"""
    balancer(text)
    s = connect_from("127.0.0.33", VIP, ports["vip"])
    try:
        sport = s.getsockname()[1]
        s.sendall(b"GET /x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        status, _, body = parse_response(read_all(s))
    finally:
        s.close()
    assert (status, body) == (200, b"lnx1")
    (_, headers, _) = web.requests[-1]
    assert headers[b"x-client"] == f"127.0.0.33:{sport}".encode()
    assert headers[b"x-vip"] == f"vip={VIP} port={ports['vip']}".encode()
    assert headers[b"x-forwarded-for"] == b"127.0.0.33"  # it is an L7 proxy now
