"""Mode-based reading (SPEC §2.4): flat pastes, `exit` / `end`, partial indentation, and
the device commands of an Admin context accepted with one warning per kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from buddylb.config.model import Config
from buddylb.config.parser import parse_text
from tests.config.support import EXAMPLES, diagnose, errors, warnings


def flat(text: str) -> str:
    """The text as a web page or mailing list shows it: every line at column 0."""
    return "\n".join(line.lstrip() for line in text.splitlines()) + "\n"


def parsed(text: str) -> Config:
    config, diagnostics = parse_text(text, "t.cfg")
    assert diagnostics == [], "\n".join(str(d) for d in diagnostics)
    return config


@pytest.mark.parametrize("example", ["shopping-cart.cfg", "web-app-tiers.cfg"])
def test_flat_paste_compiles_like_the_indented_file(example: str) -> None:
    text = (EXAMPLES / example).read_text()
    assert flat(text) != text
    indented, pasted = parsed(text), parsed(flat(text))
    assert pasted == indented  # every object, attribute and line number
    ctx = pasted.contexts["Admin"]
    assert ctx.farms and ctx.stickies and ctx.mm_policies and ctx.service_policies


def test_exit_closes_one_mode_and_end_closes_all() -> None:
    text = (
        "rserver host a\nip address 127.0.1.1\ninservice\nexit\n"  # 1-4
        "serverfarm host web\nrserver a 8080\ninservice\nexit\nprobe P\nend\n"  # 5-10
        "probe tcp P\ninterval 5\n"  # 11-12: a top-level probe after `end`
    )
    ctx = parsed(text).contexts["Admin"]
    web = ctx.farms["web"]
    assert [(m.name, m.port, m.inservice) for m in web.members] == [("a", 8080, True)]
    assert [r.name for r in web.probes] == ["P"]  # after `exit` from the rserver: the farm's
    assert ctx.probes["P"].interval_s == 5.0


def test_partially_indented_paste() -> None:
    """Sub-sub-modes written at the column of their opener (a half-lost indentation)."""
    text = (
        "policy-map type loadbalance first-match l4\n"
        "  class class-default\n"
        "  serverfarm web\n"
        "policy-map multi-match int\n"
        "  class vip\n"
        "  loadbalance vip inservice\n"
        "  loadbalance policy l4\n"
    )
    ctx = parsed(text).contexts["Admin"]
    (cls,) = ctx.lb_policies["l4"].classes
    assert cls.farm is not None and cls.farm.name == "web"
    (mm,) = ctx.mm_policies["int"].classes
    assert mm.vip_inservice and mm.lb_policy is not None and mm.lb_policy.name == "l4"


def test_indentation_still_decides_where_it_is_written() -> None:
    """`probe tcp X` at the top of an indented file is a probe, not the farm's `probe NAME`;
    `timeout 30` in a flat sticky group is the group's, not the global line."""
    text = "serverfarm host web\n  probe X\n  rserver a 80\n    inservice\nprobe tcp X\n  interval 4\n"
    ctx = parsed(text).contexts["Admin"]
    assert [r.name for r in ctx.farms["web"].probes] == ["X"] and ctx.probes["X"].interval_s == 4.0
    sticky = parsed("sticky ip-netmask 255.255.255.255 address source s\ntimeout 30\nserverfarm web\n")
    assert sticky.contexts["Admin"].stickies["s"].timeout_s == 1800.0
    assert sticky.timeouts["client"] == 30.0  # the global default is untouched


def test_flat_typo_is_reported_on_its_line_and_reading_goes_on() -> None:
    text = "rserver host a\nip address 127.0.1.1\ninservce\ninservice\n"
    config, diagnostics = diagnose(text)
    (error,) = errors(diagnostics)
    assert error.line == 3 and '"inservce" is not a command under "rserver host a" (line 1)' in error.message
    assert config.contexts["Admin"].rservers["a"].inservice  # line 4 still went to the rserver


def test_refused_opener_in_a_flat_paste_gives_one_error() -> None:
    text = "rserver host bad/name\nip address 127.0.1.1\ninservice\nprobe tcp P\n"
    _, diagnostics = diagnose(text)
    assert [d.line for d in errors(diagnostics)] == [1]


ADMIN_CONTEXT = """\
logging enable
logging timestamp
logging buffered 4
hostname ACE-1
boot system image:c4710ace-mz.A5_3_1.bin
resource-class GOLD
  limit-resource all minimum 0.00 maximum unlimited
  limit-resource sticky minimum 10.00 maximum equal-to-min
access-list ALL line 8 extended permit ip any any
access-list ALL line 16 extended permit icmp any any
class-map type management match-any REMOTE_ACCESS
  2 match protocol ssh any
  3 match protocol https any
  4 match protocol icmp any
policy-map type management first-match REMOTE_MGMT_ALLOW_POLICY
  class REMOTE_ACCESS
    permit
rserver host web1
  ip address 127.0.1.11
  inservice
serverfarm host web
  rserver web1 8080
    inservice
class-map match-all VIP-80
  2 match virtual-address 127.0.0.100 tcp eq www
policy-map type loadbalance first-match LB-WEB
  class class-default
    serverfarm web
policy-map multi-match CLIENT-VIPS
  class VIP-80
    loadbalance vip inservice
    loadbalance policy LB-WEB
    loadbalance vip icmp-reply active
interface vlan 100
  description client side
  ip address 10.1.1.2 255.255.255.0
  peer ip address 10.1.1.3 255.255.255.0
  access-group input ALL
  service-policy input REMOTE_MGMT_ALLOW_POLICY
  service-policy input CLIENT-VIPS
  no shutdown
ft interface vlan 999
  ip address 192.168.99.1 255.255.255.0
  peer ip address 192.168.99.2 255.255.255.0
  no shutdown
ft peer 1
  heartbeat interval 300
  heartbeat count 10
  ft-interface vlan 999
ft group 1
  peer 1
  priority 110
  associate-context Admin
  inservice
ip route 0.0.0.0 0.0.0.0 10.1.1.1
context VC-SHOP
  allocate-interface vlan 200
  member GOLD
snmp-server community public group Network-Monitor
username admin password 5 $1$abc$xyz role Admin domain default-domain
"""


@pytest.mark.parametrize("shape", ["indented", "flat"])
def test_admin_context_loads_with_one_warning_per_kind(shape: str) -> None:
    text = ADMIN_CONTEXT if shape == "indented" else flat(ADMIN_CONTEXT)
    config, diagnostics = diagnose(text)
    assert errors(diagnostics) == []
    found = {d.line: d.message for d in warnings(diagnostics)}
    assert sorted(found) == [1, 33, 35]  # device (first: logging), unused (icmp-reply), interface
    assert found[1].startswith("device and context-administration commands, not used by buddylb: 34 lines:")
    assert '"logging" (lines 1, 2, 3)' in found[1] and '"hostname" (line 4)' in found[1]
    assert "ACE commands buddylb does not need" in found[33]
    assert '"description" (line 35), "ip address" (line 36), "peer ip" (line 37), "no shutdown" (line 41)' in found[35]
    # the context definition did not move the objects: everything is in Admin
    assert list(config.contexts) == ["Admin"]
    ctx = config.contexts["Admin"]
    assert ctx.management_policies == {"REMOTE_MGMT_ALLOW_POLICY"}
    assert [r.name for r in ctx.active_policies()] == ["REMOTE_MGMT_ALLOW_POLICY", "CLIENT-VIPS"]
    assert [(e.seq, e.protocol) for e in ctx.access_lists["ALL"].entries] == [(8, 0), (16, 1)]
    assert ctx.farms["web"].members[0].inservice and ctx.rservers["web1"].inservice


def test_undefined_access_group_is_an_error() -> None:
    _, diagnostics = diagnose("interface vlan 10\n  access-group input NOPE\naccess-group input NONE\n")
    assert [(d.line, 'access-list "NOPE"' in d.message or 'access-list "NONE"' in d.message) for d in errors(diagnostics)] == [
        (2, True),
        (3, True),
    ]


def test_replicate_sticky_without_a_store_warns_once(tmp_path: Path) -> None:
    text = (
        "sticky ip-netmask 255.255.255.255 address source a\n  replicate sticky\n  serverfarm web\n"
        "sticky ip-netmask 255.255.255.255 address source b\n  replicate sticky\n  serverfarm web\n"
    )
    _, diagnostics = diagnose(text)
    (warning,) = [d for d in warnings(diagnostics) if "replicate" in d.message]
    assert warning.line == 2 and "(and 1 more sticky group)" in warning.message


POLICY_BASE = (
    "rserver host a\n  ip address 127.0.1.1\n  inservice\nserverfarm host web\n  rserver a 8080\n    inservice\n"
    "sticky http-cookie SID ck\n  serverfarm web\n"
    "sticky ip-netmask 255.255.255.255 address source ip\n  serverfarm web\n"
    "class-map type http loadbalance match-any api\n  2 match http url /api/.*\n"
)


@pytest.mark.parametrize(
    ("policy", "http", "reason"),
    [
        ("first-match p\n  class class-default\n    sticky-serverfarm ip\n", False, "default policy type and no class needs HTTP"),
        ("first-match p\n  class class-default\n    sticky-serverfarm ck\n", True, 'class "class-default" uses http-cookie sticky group "ck"'),
        ("first-match p\n  class api\n    serverfarm web\n  class class-default\n    serverfarm web\n", True, 'class "api" matches http class-map "api"'),
        ("first-match p\n  class class-default\n    serverfarm web\n    insert-http X-Src header-value \"%is:%ps\"\n", True, "inserts HTTP headers"),
        ("generic first-match p\n  class class-default\n    serverfarm web\n", False, '"policy-map type loadbalance generic"'),
        ("http first-match p\n  class class-default\n    serverfarm web\n", True, '"policy-map type loadbalance http"'),
    ],
)
def test_policy_type_follows_ace(policy: str, http: bool, reason: str) -> None:
    """SPEC §2.1: no protocol word is L4 until a class needs HTTP; generic L4; http L7."""
    config, diagnostics = diagnose(POLICY_BASE + "policy-map type loadbalance " + policy)
    assert errors(diagnostics) == []
    pol = config.contexts["Admin"].lb_policies["p"]
    assert pol.http is http and reason in pol.reason


def test_insert_http_values_are_kept() -> None:
    config, _ = diagnose(
        POLICY_BASE + 'policy-map type loadbalance first-match p\n  class class-default\n    serverfarm web\n'
        '    insert-http X-Client header-value "%is"\n    insert-http Via header-value "ace %id:%pd"\n'
    )
    (cls,) = config.contexts["Admin"].lb_policies["p"].classes
    assert [(h.name, h.value) for h in cls.insert_http] == [("X-Client", "%is"), ("Via", "ace %id:%pd")]


def test_host_is_the_default_type_and_redirect_servers_warn() -> None:
    """ACE: `rserver NAME` and `serverfarm NAME` are host objects; redirect ones are not done."""
    text = (
        "rserver web1\n  ip address 127.0.1.1\n  inservice\n"
        "rserver redirect R1\n  webhost-redirection https://example.invalid/ 301\n  inservice\n"
        "serverfarm web\n  rserver web1 80\n    inservice\n"
        "serverfarm redirect SORRY\n  rserver R1\n    inservice\n"
    )
    config, diagnostics = diagnose(text)
    assert errors(diagnostics) == []
    ctx = config.contexts["Admin"]
    assert ctx.rservers["web1"].address == "127.0.1.1" and list(ctx.rservers) == ["web1"]
    assert [(m.name, m.port, m.inservice) for m in ctx.farms["web"].members] == [("web1", 80, True)]
    assert [(d.line, d.category) for d in diagnostics] == [(4, "mapping"), (10, "mapping")]


def test_a_pasted_cli_session_loads() -> None:
    text = (
        "ACE-1/Admin# show running-config\nGenerating configuration....\n\n"
        "rserver host a\n  ip address 127.0.1.1\n  inservice\nACE-1/Admin(config)#\n"
    )
    config, diagnostics = diagnose(text)
    assert errors(diagnostics) == [] and config.contexts["Admin"].rservers["a"].inservice
    assert [(d.line, d.category) for d in diagnostics] == [(1, "unused"), (2, "device")]
