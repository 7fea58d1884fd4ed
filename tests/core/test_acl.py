"""core.acl (SPEC §2.4): first match, implicit deny, any / host / A MASK, port operators,
and which access-groups apply to which VIP."""

from __future__ import annotations

import pytest

from buddylb.core.acl import AclCounters, compile_acl, vip_filter
from tests.config.support import diagnose

ACLS = """\
access-list WEB line 8 extended deny tcp host 127.0.0.66 any
access-list WEB line 16 extended permit tcp 127.0.0.0 255.255.255.0 host 127.0.0.100 eq www
access-list WEB line 24 extended permit tcp any host 127.0.0.100 range 8000 8010
access-list WEB extended permit udp any any eq domain
access-list WEB line 12 extended deny tcp any lt 1024 any
access-list OTHER line 8 extended permit ip any any
access-list NEQ line 8 extended permit tcp any any neq 22
access-list NEQ line 9 extended permit icmp any any
"""


def compiled(name: str):
    config, diagnostics = diagnose(ACLS)
    assert [d for d in diagnostics if d.severity == "error"] == []
    return compile_acl(config.contexts["Admin"].access_lists[name])


def test_lines_are_ordered_by_their_numbers() -> None:
    acl = compiled("WEB")
    assert [ln.seq for ln in acl.lines] == [8, 12, 16, 24, 32]  # unnumbered: last + 8


@pytest.mark.parametrize(
    ("proto", "src", "sport", "dst", "dport", "index"),
    [
        (6, "127.0.0.66", 40000, "127.0.0.100", 80, 0),  # host deny wins (first match)
        (6, "127.0.0.5", 1000, "127.0.0.100", 80, 1),  # source port below 1024: deny line 12
        (6, "127.0.0.5", 40000, "127.0.0.100", 80, 2),  # A MASK + host + eq www
        (6, "127.0.1.5", 40000, "127.0.0.100", 80, None),  # outside the /24: implicit deny
        (6, "127.0.1.5", 40000, "127.0.0.100", 8005, 3),  # range
        (6, "127.0.1.5", 40000, "127.0.0.100", 8011, None),
        (6, "127.0.0.5", 40000, "127.0.0.101", 80, None),  # another destination
        (17, "127.0.1.5", 40000, "127.0.0.100", 53, 4),  # udp eq domain
        (6, "127.0.1.5", 40000, "127.0.0.100", 53, None),  # tcp is not udp
    ],
)
def test_first_match_and_implicit_deny(proto: int, src: str, sport: int, dst: str, dport: int, index: int | None) -> None:
    import ipaddress

    acl = compiled("WEB")
    s, d = int(ipaddress.ip_address(src)), int(ipaddress.ip_address(dst))
    assert acl.check(proto, 4, s, sport, d, dport) == index


def test_neq_ip_and_icmp() -> None:
    neq = compiled("NEQ")
    assert neq.check(6, 4, 1, 5, 2, 22) is None and neq.check(6, 4, 1, 5, 2, 23) == 0
    assert neq.check(1, 4, 1, 0, 2, 0) == 1
    other = compiled("OTHER")
    assert other.check(6, 4, 1, 5, 2, 22) == 0 and other.check(17, 6, 1, 5, 2, 22) == 0  # any: both families


def test_vip_filter_any_permits_and_counts() -> None:
    text = ACLS + (
        "class-map match-any V\n  2 match virtual-address 127.0.0.100 tcp eq www\n"
        "policy-map multi-match PM\n  class V\n    loadbalance vip inservice\n"
        "policy-map multi-match OPEN\n  class V\n    loadbalance vip inservice\n"
        "interface vlan 10\n  access-group input WEB\n  service-policy input PM\n"
        "interface vlan 20\n  service-policy input OPEN\n"
    )
    config, _ = diagnose(text)
    ctx = config.contexts["Admin"]
    acls = {n: compile_acl(a) for n, a in ctx.access_lists.items()}
    gate = vip_filter(ctx, acls, "PM")
    assert gate is not None and [a.name for a in gate.acls] == ["WEB"]
    assert vip_filter(ctx, acls, "OPEN") is None  # no access-group applies: not filtered
    assert gate.decide(6, "127.0.0.5", 40000, "127.0.0.100", 80) == (True, "WEB", 16)
    assert gate.decide(6, "127.0.0.66", 40000, "127.0.0.100", 80) == (False, "WEB", 8)
    assert gate.decide(6, "127.0.9.9", 40000, "127.0.0.100", 80) == (False, None, None)
    ctx.access_groups.append(type(ctx.interfaces[0].access_groups[0])("OTHER", 99))  # a top-level group
    both = vip_filter(ctx, acls, "PM")
    assert both is not None and [a.name for a in both.acls] == ["OTHER", "WEB"]
    assert both.decide(6, "127.0.9.9", 40000, "127.0.0.100", 80) == (True, "OTHER", 8)  # one permits: accepted
    counters = AclCounters()
    counters.count("Admin", "127.0.0.100:80", False, "WEB", 8)
    counters.count("Admin", "127.0.0.100:80", False, None, None)
    counters.count("Admin", "127.0.0.100:80", True, "WEB", 16)
    assert counters.hits == {("Admin", "WEB", 8): 1, ("Admin", "WEB", 16): 1}
    assert counters.denied == {("Admin", "127.0.0.100:80"): 2}
    assert counters.implicit_denies == {("Admin", "127.0.0.100:80"): 1}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("access-list A line 8 extended permit tcp any", "missing the destination address"),
        ("access-list A line 8 extended permit gre9 any any", 'protocol "gre9" is not ip'),
        ("access-list A line 8 extended permit tcp 10.0.0.0 255.0.255.0 any", "not contiguous"),
        ("access-list A line 8 extended permit tcp object-group X any", "object-groups are not supported"),
        ("access-list A line 8 standard permit any", "supports extended lines only"),
        ("access-list A line 8 extended permit tcp any any range 90 80", "is empty"),
        ("access-list A line 8 extended permit ip any any\naccess-list A line 8 extended deny ip any any", "already has line 8"),
    ],
)
def test_bad_access_list_lines(line: str, message: str) -> None:
    _, diagnostics = diagnose(line + "\n")
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert message in error.message


def test_match_all_vip_class_map_with_source_addresses_admits_only_them() -> None:
    from buddylb.core.compile import compile_config

    text = (
        "rserver host a\n  ip address 127.0.1.1\n  inservice\nserverfarm host web\n  rserver a 80\n    inservice\n"
        "class-map match-all V\n  2 match virtual-address 127.0.0.100 tcp eq 80\n"
        "  3 match source-address 127.0.0.0 255.255.255.128\n"
        "policy-map type loadbalance first-match lb\n  class class-default\n    serverfarm web\n"
        "policy-map multi-match pm\n  class V\n    loadbalance vip inservice\n    loadbalance policy lb\n"
        "service-policy input pm\n"
    )
    config, diagnostics = diagnose(text)
    assert [d for d in diagnostics if d.severity == "error"] == []
    gate = compile_config(config).vips[("127.0.0.100", 80)].acl
    assert gate is not None and gate.acls == ()
    assert gate.decide(6, "127.0.0.5", 1000, "127.0.0.100", 80) == (True, None, None)
    assert gate.decide(6, "127.0.0.200", 1000, "127.0.0.100", 80) == (False, None, None)
    _, diagnostics = diagnose(text.replace("match-all V", "match-any V"))
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert error.line == 9 and 'write "class-map match-all V"' in error.message
