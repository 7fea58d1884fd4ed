"""Invalid configurations (SPEC §2.3): each reports exactly one error, on the right line,
naming the offending value; a file with several errors reports them all; warnings do
not fail a configuration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buddylb.config.parser import load_config
from buddylb.errors import ConfigError
from tests.config.support import EXAMPLES, assert_one_error, diagnose, errors, warnings, write_cert_pair

# A small valid configuration (9 lines) that the cases extend.
BASE = """\
rserver host lnx1
  ip address 127.0.1.11
  inservice
serverfarm host web
  rserver lnx1 8080
    inservice
policy-map type loadbalance first-match l4
  class class-default
    serverfarm web
"""
B = BASE.count("\n")

VIP = "class-map vip\n  2 match virtual-address 127.0.0.100 tcp eq 80\n"  # 2 lines

TWO_BUDDY_FARMS = (
    "serverfarm host fa\n  rserver lnx1 80\n    buddy-group blue\n"
    "serverfarm host fb\n  rserver lnx1 81\n    buddy-group blue\n"
)  # 6 lines

CASES: list[tuple[str, str, int, str]] = [
    # (id, config text, expected line, expected substring of the message)
    ("unknown-top-level", BASE + "frobnicate now\n", B + 1, '"frobnicate now"'),
    ("unknown-in-rserver", "rserver host a\n  ip address 127.0.0.1\n  colour blue\n", 3, '"colour blue"'),
    ("misspelt-ip-address", "rserver host a\n  ip adress 127.0.0.1\n", 2, '"ip adress 127.0.0.1"'),
    (
        "repeated-ip-address",
        "rserver host a\n  ip address 127.0.0.1\n  ip address 127.0.0.2\n",
        3,
        '"ip address" is repeated',
    ),
    (
        "repeated-buddy-group",
        BASE + "serverfarm host f\n  rserver lnx1\n    buddy-group a\n    buddy-group b\n",
        B + 4,
        '"buddy-group" is repeated',
    ),
    (
        "duplicate-rserver",
        BASE + "rserver host lnx1\n  ip address 127.0.0.2\n",
        B + 1,
        'rserver host "lnx1" is already defined',
    ),
    (
        "duplicate-policy-name",
        BASE + "policy-map multi-match l4\n",
        B + 1,
        'policy-map "l4" is already defined',
    ),
    (
        "duplicate-farm-member",
        BASE + "serverfarm host f\n  rserver lnx1 80\n  rserver lnx1 www\n",
        B + 3,
        'rserver "lnx1" on port 80',
    ),
    (
        "undefined-rserver",
        "serverfarm host web\n  rserver lnx9 80\n",
        2,
        'rserver "lnx9", which is not defined; define "rserver host lnx9"',
    ),
    (
        "undefined-probe",
        BASE + "serverfarm host f\n  probe NOPE\n",
        B + 2,
        'probe "NOPE", which is not defined',
    ),
    (
        "undefined-sticky-farm",
        "sticky ip-netmask 255.255.255.255 address source s1\n  serverfarm nofarm\n",
        2,
        '"nofarm"',
    ),
    (
        "undefined-backup-farm",
        BASE + "sticky ip-netmask 255.255.255.255 address source s1\n  serverfarm web backup spare\n",
        B + 2,
        'serverfarm "spare"',
    ),
    (
        "undefined-sticky-group",
        BASE
        + "policy-map type loadbalance first-match p\n  class class-default\n    sticky-serverfarm nosticky\n",
        B + 3,
        '"nosticky"',
    ),
    (
        "undefined-class-map",
        BASE + "policy-map type loadbalance http first-match p\n  class nomap\n    serverfarm web\n",
        B + 2,
        'class-map "nomap"',
    ),
    (
        "undefined-lb-policy",
        BASE + VIP + "policy-map multi-match mm\n  class vip\n    loadbalance policy nopol\n",
        B + 5,
        '"nopol"',
    ),
    (
        "undefined-ssl-proxy",
        BASE
        + VIP
        + "policy-map multi-match mm\n  class vip\n    loadbalance policy l4\n    ssl-proxy server notls\n",
        B + 6,
        'ssl-proxy service "notls"',
    ),
    (
        "undefined-vip-class-map",
        BASE + "policy-map multi-match mm\n  class novip\n    loadbalance policy l4\n",
        B + 2,
        '"novip"',
    ),
    ("undefined-service-policy", BASE + "service-policy input nothing\n", B + 1, '"nothing"'),
    (
        "service-policy-of-lb-policy",
        BASE + "service-policy input l4\n",
        B + 1,
        'names "l4", a load-balance policy-map',
    ),
    (
        "rserver-without-address",
        "rserver host lonely\n  inservice\n",
        1,
        'rserver host "lonely" has no address',
    ),
    (
        "sticky-without-farm",
        "sticky ssl-session tls\n  timeout 10\n",
        1,
        'sticky group "tls" has no serverfarm',
    ),
    (
        "class-without-action",
        BASE + "policy-map type loadbalance first-match p\n  class class-default\n",
        B + 2,
        'class "class-default" of policy-map "p" has no action',
    ),
    (
        "class-with-two-actions",
        BASE + "sticky ip-netmask 255.255.255.255 address source s\n  serverfarm web\n"
        "policy-map type loadbalance first-match p\n  class class-default\n    serverfarm web\n    sticky-serverfarm s\n",
        B + 6,
        'already sends to serverfarm "web"',
    ),
    (
        "mixed-key-types",
        BASE
        + TWO_BUDDY_FARMS
        + "sticky ip-netmask 255.255.255.255 address source S1\n  serverfarm fa\n  buddy-group g\n"
        "sticky http-cookie SID S2\n  serverfarm fb\n  buddy-group g\n",
        B + 12,
        'sticky group "S2" (http-cookie "SID") joins buddy sticky group "g"',
    ),
    (
        "mixed-address-rules",
        BASE
        + TWO_BUDDY_FARMS
        + "sticky ip-netmask 255.255.255.255 address source S1\n  serverfarm fa\n  buddy-group g\n"
        "sticky ip-netmask 255.255.255.0 address both S2\n  serverfarm fb\n  buddy-group g\n",
        B + 12,
        'sticky group "S2" (ip-netmask address both)',
    ),
    (
        "rserver-in-no-buddy-real-group",
        BASE
        + TWO_BUDDY_FARMS
        + "sticky ip-netmask 255.255.255.255 address source S1\n  serverfarm fa\n  buddy-group g\n"
        "sticky ip-netmask 255.255.255.255 address source S2\n  serverfarm web\n  buddy-group g\n",
        B + 12,
        'rserver "lnx1" of its serverfarm "web"',
    ),
    (
        "buddy-sticky-group-named-like-a-sticky-group",
        BASE
        + TWO_BUDDY_FARMS
        + "sticky ip-netmask 255.255.255.255 address source S1\n  serverfarm fa\n  buddy-group S2\n"
        "sticky ip-netmask 255.255.255.255 address source S2\n  serverfarm fb\n",
        B + 9,
        'buddy sticky group "S2" has the name of sticky group "S2"',
    ),
    (
        "vip-claimed-twice",
        BASE + VIP + "class-map vip2\n  2 match virtual-address 127.0.0.100 tcp eq www\n"
        "policy-map multi-match mm\n  class vip\n    loadbalance policy l4\n  class vip2\n    loadbalance policy l4\n"
        "service-policy input mm\n",
        B + 8,
        'VIP 127.0.0.100:80 of class "vip2"',
    ),
    (
        "vip-range-overlaps-wildcard",
        BASE + VIP + "class-map all\n  2 match virtual-address 0.0.0.0 tcp range 79 81\n"
        "policy-map multi-match mm\n  class vip\n    loadbalance policy l4\n"
        "policy-map multi-match mm2\n  class all\n    loadbalance policy l4\n"
        "service-policy input mm\nservice-policy input mm2\n",
        B + 9,
        'VIP 0.0.0.0:79-81 of class "all"',
    ),
    ("cert-without-file", "ssl-proxy service T\n  cert\n", 2, '"cert" is missing the certificate'),
    (
        "http-cookie-on-l4",
        BASE + "sticky http-cookie SESSION ck\n  serverfarm web\n"
        "policy-map type loadbalance generic first-match p4\n  class class-default\n    sticky-serverfarm ck\n",
        B + 5,
        'sticky group "ck" of type http-cookie',
    ),
    (
        "http-header-on-l4",
        BASE + "sticky http-header X-User hk\n  serverfarm web\n"
        "policy-map type loadbalance generic first-match p4\n  class class-default\n    sticky-serverfarm hk\n",
        B + 5,
        'sticky group "hk" of type http-header',
    ),
    (
        "ssl-session-on-l7",
        BASE + "sticky ssl-session tls\n  serverfarm web\n"
        "policy-map type loadbalance http first-match p7\n  class class-default\n    sticky-serverfarm tls\n",
        B + 5,
        'sticky group "tls" of type ssl-session',
    ),
    (
        "http-class-map-on-l4",
        BASE + "class-map type http loadbalance match-any urls\n  2 match http url /a.*\n"
        "policy-map type loadbalance generic first-match p5\n  class urls\n    serverfarm web\n",
        B + 4,
        'class-map "urls" matches http requests',
    ),
    (
        "vip-class-map-in-lb-policy",
        BASE + VIP + "policy-map type loadbalance http first-match p\n  class vip\n    serverfarm web\n",
        B + 4,
        'class-map "vip" (line 10) matches virtual addresses',
    ),
    (
        "http-class-map-as-vip",
        BASE + "class-map type http loadbalance urls\n  2 match http url /.*\n"
        "policy-map multi-match mm\n  class urls\n    loadbalance policy l4\n",
        B + 4,
        'class-map "urls", which matches http requests',
    ),
    (
        "invalid-regex",
        "class-map type http loadbalance u\n  2 match http url (unclosed\n",
        2,
        'regex "(unclosed" does not compile',
    ),
    (
        "invalid-header-regex",
        'class-map type http loadbalance u\n  2 match http header Host header-value "[a-"\n',
        2,
        'regex "[a-"',
    ),
    (
        "duplicate-seq",
        "class-map match-any v\n  2 match virtual-address 127.0.0.1 tcp eq 80\n  2 match virtual-address 127.0.0.2 tcp eq 80\n",
        3,
        'SEQ 2 is used twice in class-map "v"',
    ),
    (
        "missing-seq",
        "class-map v\n  match virtual-address 127.0.0.1 tcp eq 80\n",
        2,
        "needs a sequence number",
    ),
    (
        "global-after-object",
        BASE + "sticky-store redis://127.0.0.1:6379/0\n",
        B + 1,
        '"sticky-store" is a global setting',
    ),
    ("timeout-after-context", "context C\ntimeout client 5\n", 2, '"timeout" is a global setting'),
    (
        "underscores-bad-choice",
        "http underscores-in-headers yes\n",
        1,
        'underscores-in-headers choice "yes" is not one of allow, drop',
    ),
    (
        "underscores-after-object",
        BASE + "http underscores-in-headers allow\n",
        B + 1,
        '"http underscores-in-headers" is a global setting',
    ),
    (
        "trusted-proxy-after-object",
        BASE + "trusted-proxy 10.0.0.0/8\n",
        B + 1,
        '"trusted-proxy" is a global setting',
    ),
    (
        "bad-name-character",
        "rserver host lnx$1\n  ip address 127.0.0.1\n",
        1,
        'rserver name "lnx$1" is not a valid name',
    ),
    ("name-too-long", f"serverfarm host {'f' * 65}\n", 1, "is 65 characters long"),
    (
        "weight-out-of-range",
        "rserver host a\n  ip address 127.0.0.1\n  weight 101\n",
        3,
        "weight 101 is out of range",
    ),
    (
        "conn-limit-min-above-max",
        "rserver host a\n  ip address 127.0.0.1\n  conn-limit max 5 min 10\n",
        3,
        "conn-limit min 10 is above max 5",
    ),
    (
        "non-contiguous-hash-mask",
        BASE + "serverfarm host f\n  predictor hash address source 255.0.255.0\n",
        B + 2,
        '"255.0.255.0" is not contiguous',
    ),
    (
        "non-contiguous-sticky-mask",
        BASE + "sticky ip-netmask 255.255.0.255 address both s\n  serverfarm web\n",
        B + 1,
        '"255.255.0.255" is not contiguous',
    ),
    (
        "unknown-predictor",
        BASE + "serverfarm host f\n  predictor fastest\n",
        B + 2,
        'predictor "fastest" is not one of',
    ),
    (
        "port-out-of-range",
        BASE + "serverfarm host f\n  rserver lnx1 70000\n",
        B + 2,
        "rserver port 70000 is out of range",
    ),
    (
        "unknown-port-name",
        BASE + "serverfarm host f\n  rserver lnx1 gopher\n",
        B + 2,
        '"gopher" is not a port',
    ),
    (
        "bad-time",
        BASE + "sticky ip-netmask 255.255.255.255 address both s\n  timeout 5x\n  serverfarm web\n",
        B + 2,
        '"5x" is not a time',
    ),
    ("zero-time", "probe tcp P\n  interval 0\n", 2, 'time "0" must be greater than zero'),
    ("unknown-timeout-name", "timeout bogus 5\n", 1, 'timeout name "bogus" is not one of'),
    (
        "repeated-global-timeout",
        "timeout client 5\ntimeout client 6\n",
        2,
        '"timeout client" is repeated (first on line 1)',
    ),
    ("unknown-sticky-type", "sticky layer4-payload x\n", 1, 'sticky type "layer4-payload" is not supported'),
    (
        "bad-ip-address",
        "rserver host a\n  ip address 300.1.1.1\n",
        2,
        'address "300.1.1.1" is not an IPv4 or IPv6 address',
    ),
    ("class-default-class-map", "class-map class-default\n", 1, '"class-default" is reserved'),
    (
        "class-default-in-multi-match",
        BASE + "policy-map multi-match mm\n  class class-default\n    loadbalance policy l4\n",
        B + 2,
        'policy-map multi-match "mm" cannot use class-default',
    ),
    (
        # SPEC §2.4: read by mode; `context` opens no buddylb sub-mode, so the line is an
        # rserver of context Shop (and lacks its address), not a stray line.
        "line-indented-under-context",
        "context Shop\n  rserver host a\n",
        2,
        'rserver host "a" has no address',
    ),
    (
        "farm-own-backup",
        BASE
        + "policy-map type loadbalance first-match p\n  class class-default\n    serverfarm web backup web\n",
        B + 3,
        'serverfarm "web" is named as its own backup',
    ),
    (
        "trusted-proxy-host-bits",
        "trusted-proxy 10.0.0.1/8\n",
        1,
        'trusted-proxy "10.0.0.1/8" has host bits set; write 10.0.0.0/8',
    ),
    (
        "sticky-store-not-redis",
        "sticky-store http://127.0.0.1:6379/0\n",
        1,
        'sticky-store "http://127.0.0.1:6379/0" is not a Redis URL',
    ),
    (
        "repeated-sticky-table",
        "sticky-table max-entries 10\nsticky-table max-entries 20\n",
        2,
        '"sticky-table max-entries" is repeated in context "Admin"',
    ),
    (
        "tcp-command-in-tcp-probe",
        "probe tcp P\n  expect status 200 299\n",
        2,
        '"expect status 200" is not a command under "probe tcp P"',
    ),
    (
        "cookie-insert-in-ip-sticky",
        BASE + "sticky ip-netmask 255.255.255.255 address both s\n  cookie insert\n  serverfarm web\n",
        B + 2,
        '"cookie insert" is not a command',
    ),
    (
        "v6-prefix-out-of-range",
        BASE + "sticky ip-netmask 255.255.255.255 address both s\n  v6-prefix 129\n  serverfarm web\n",
        B + 2,
        "v6-prefix 129 is out of range",
    ),
    (
        "udp-vip-on-an-http-policy",
        BASE + "class-map v\n  2 match virtual-address 127.0.0.1 udp eq 53\n"
        "policy-map type loadbalance http first-match p\n  class class-default\n    serverfarm web\n"
        "policy-map multi-match m\n  class v\n    loadbalance vip inservice\n    loadbalance policy p\n"
        "service-policy input m\n",
        B + 7,
        'serves the UDP VIP 127.0.0.1:53, but its policy-map "p" is L7',
    ),
    (
        "ipv6-vip-with-mask",
        "class-map v\n  2 match virtual-address ::1 255.255.255.0 tcp eq 80\n",
        2,
        "virtual address ::1 is IPv6 and takes no netmask",
    ),
    (
        "vip-subnet-mask",
        "class-map v\n  2 match virtual-address 10.0.0.0 255.255.255.0 tcp eq 80\n",
        2,
        "the netmask 255.255.255.0; a VIP is one address",
    ),
    (
        "vip-any-port",
        "class-map v\n  2 match virtual-address 127.0.0.1 tcp any\n",
        2,
        "matches any port of 127.0.0.1",
    ),
    (
        "match-all-two-vips",
        "class-map match-all v\n  2 match virtual-address 127.0.0.1 tcp eq 80\n  3 match virtual-address 127.0.0.2 tcp eq 80\n",
        1,
        'write "class-map match-any v"',
    ),
    ("class-map-without-lines", "class-map v\n", 1, 'class-map "v" has no match lines'),
    (
        "policy-without-class",
        "policy-map type loadbalance first-match empty\n",
        1,
        'policy-map "empty" has no class',
    ),
    (
        "multi-match-class-without-policy",
        BASE + VIP + "policy-map multi-match mm\n  class vip\n    loadbalance vip inservice\n",
        B + 4,
        'class "vip" of policy-map multi-match "mm" has no load-balance policy',
    ),
    ("unterminated-quote", 'probe http P\n  header Host header-value "shop\n', 2, "never closed"),
    ("text-after-quote", 'probe http P\n  header Host header-value "shop"x\n', 2, 'closing quote of "shop"'),
    ("control-character", "rserver host a\x0b\n", 1, "control character U+000B"),
    ("rserver-without-a-name", "rserver\n  ip address 127.0.0.1\n", 1, 'missing the rserver name'),
    (
        "policy-map-without-first-match",
        BASE + "policy-map type loadbalance http p\n  class class-default\n    serverfarm web\n",
        B + 1,
        'policy-map "p" needs "first-match"',
    ),
    (
        "duplicate-class-in-policy",
        BASE
        + "policy-map type loadbalance first-match p\n  class class-default\n    serverfarm web\n  class class-default\n",
        B + 4,
        'class "class-default" appears twice',
    ),
    (
        "probe-url-not-a-path",
        "probe http P\n  request method get url health\n",
        2,
        'probe url "health" is not a request path',
    ),
    (
        "expect-status-reversed",
        "probe http P\n  expect status 299 200\n",
        2,
        "expect status 299 200 is an empty range",
    ),
    (
        "header-name-not-a-token",
        BASE + 'sticky http-header "X User" hs\n  serverfarm web\n',
        B + 1,
        'header name "X User" is not an HTTP token',
    ),
    (
        "duplicate-farm-member-names-first-line",
        BASE + "serverfarm host g\n  rserver lnx1 8080\n    inservice\n  rserver lnx1 8081\n  rserver lnx1 8080\n",
        B + 5,
        f'rserver "lnx1" on port 8080 is already in serverfarm "g" (line {B + 2})',
    ),
    (
        "duplicate-farm-member-no-port",
        BASE + "serverfarm host f\n  rserver lnx1\n  rserver lnx1\n",
        B + 3,
        f'rserver "lnx1" on the VIP\'s port is already in serverfarm "f" (line {B + 2})',
    ),
]


def test_same_member_in_other_farms_and_contexts_is_no_duplicate() -> None:
    """The member index is per context and farm: only a repeat in one farm is an error."""
    text = (BASE + "serverfarm host other\n  rserver lnx1 8080\n  rserver lnx1\n"
            "context Lab\n" + BASE)
    assert errors(diagnose(text)[1]) == []


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_error_on_the_right_line(text: str, line: int, expected: str) -> None:
    assert_one_error(text, line, expected)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def test_three_independent_errors_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "three.cfg"
    path.write_text(
        BASE  # lines 1-9
        + "rserver host lnx2\n"  # 10
        "  ip address 127.0.1.300\n"  # 11: bad address
        "serverfarm host app\n"  # 12
        "  rserver db9 9000\n"  # 13: undefined rserver
        "  predictor hash address source 255.0.255.0\n"  # 14: non-contiguous mask
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(d.line, d.severity) for d in info.value.diagnostics]
    assert found == [(11, "error"), (13, "error"), (14, "error")]
    text = str(info.value)
    for needle in ('"127.0.1.300"', '"db9"', '"255.0.255.0"'):
        assert needle in text


def test_vip_claimed_in_two_contexts() -> None:
    one_context = (
        BASE
        + VIP
        + "policy-map multi-match mm\n  class vip\n    loadbalance policy l4\nservice-policy input mm\n"
    )
    _, diagnostics = diagnose(one_context + "context Other\n" + one_context)
    (error,) = errors(diagnostics)
    assert error.line == (B + 6) + 1 + B + 4
    assert (
        'in context "Other" is already claimed by class "vip" of policy-map "mm" in context "Admin"'
        in error.message
    )


def test_inactive_multi_match_claims_no_vip() -> None:
    text = BASE + VIP + "policy-map multi-match mm\n  class vip\n    loadbalance policy l4\n"
    _, diagnostics = diagnose(
        text
        + text.replace("mm", "mm2")
        .replace(BASE, "")
        .replace("class-map vip", "class-map vip2")
        .replace("class vip", "class vip2")
    )
    assert errors(diagnostics) == []


def test_tls_problems(tmp_path: Path) -> None:
    write_cert_pair(tmp_path, "a")
    write_cert_pair(tmp_path, "b")
    write_cert_pair(tmp_path, "enc", password=b"secret")
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    text = (
        "ssl-proxy service mismatch\n  cert a.crt\n  key b.key\n"  # 1-3
        "ssl-proxy service encrypted\n  cert enc.crt\n  key enc.key\n"  # 4-6
        "ssl-proxy service junk\n  cert junk.crt\n  key a.key\n"  # 7-9
        "ssl-proxy service badchain\n  cert a.crt\n  key a.key\n  chain nowhere.pem\n"  # 10-13
        "ssl-proxy service good\n  cert a.crt\n  key a.key\n  chain b.crt\n"  # 14-17
        "ssl-proxy service nocert\n  cert missing.crt\n  key a.key\n"  # 18-20
        "ssl-proxy service nokey\n  cert a.crt\n"  # 21-22
    )
    _, diagnostics = diagnose(text, tmp_path)
    found = {d.line: d.message for d in errors(diagnostics)}
    assert sorted(found) == [3, 6, 8, 13, 19, 21]
    assert "missing.crt does not exist" in found[19]
    assert 'ssl-proxy service "nokey" has no key; add "key FILE"' in found[21]
    assert 'ssl-proxy service "mismatch"' in found[3] and "do not load together" in found[3]
    assert "enc.key is encrypted" in found[6]
    assert "junk.crt holds no PEM certificate" in found[8]
    assert "nowhere.pem does not exist" in found[13]


def test_no_cascade_from_a_broken_block() -> None:
    """A broken opener skips its block; a bad line in a block does not make its object
    reported again as missing what the line said."""
    text = (
        "rserver host bad name\n"  # 1: extra word; the rserver exists, its block is parsed
        "  ip address 127.0.0.1\n"
        "rserver host lnx$\n"  # 3: bad name; its block is skipped
        "  ip address 999.0.0.1\n"
        "  frobnicate\n"
        "sticky ip-netmask 255.0.0.0 address sideways S\n"  # 6: bad rule; S still exists
        "  serverfarm nofarm\n"  # 7: a real error
        "rserver host ok\n"
        "  ip adress 127.0.0.1\n"  # 9: misspelt; no "has no address" cascade
    )
    _, diagnostics = diagnose(text)
    assert [d.line for d in errors(diagnostics)] == [1, 3, 6, 7, 9]


# --- warnings: the configuration is still good (exit 0) ---------------------------------------


ACE_IGNORED = (
    "description the shop\n"  # 1
    "access-list ALL line 8 extended permit ip any any\n"  # 2
    "interface vlan 10\n"  # 3
    "  description client side\n"
    "  ip address 127.0.0.1 255.0.0.0\n"
    "  access-group input ALL\n"
    "  service-policy input int\n"
    "nat-pool 1 127.0.0.200 127.0.0.200 netmask 255.255.255.255 pat\n"  # 8
    "rserver host lnx1\n"
    "  description first web server\n"  # 10
    "  ip address 127.0.1.11\n"
    "  inservice\n"
    "serverfarm host web\n"
    "  rserver lnx1 8080\n"
    "    inservice\n"
    "policy-map type loadbalance first-match l4\n"
    "  class class-default\n"
    "    serverfarm web\n"
    "class-map vip\n"
    "  2 match virtual-address 127.0.0.100 tcp eq 80\n"
    "policy-map multi-match int\n"
    "  class vip\n"
    "    loadbalance vip inservice\n"
    "    loadbalance policy l4\n"
    "    loadbalance vip icmp-reply active\n"  # 25
    "    nat dynamic 1 vlan 10\n"  # 26
    "service-policy input int\n"
)


def test_ace_commands_are_ignored_with_one_warning_per_kind(tmp_path: Path) -> None:
    path = tmp_path / "ace.cfg"
    path.write_text(ACE_IGNORED)
    config = load_config(path)  # no ConfigError: warnings only
    found = {d.line: d.message for d in config.warnings}
    # one warning per kind, on its first line (SPEC §2.3)
    assert sorted(found) == [1, 4, 8, 26]
    assert all(d.severity == "warning" for d in config.warnings)
    assert found[1].startswith("ACE commands buddylb does not need: 3 lines:")
    assert '"description" (lines 1, 10)' in found[1] and '"loadbalance vip icmp-reply" (line 25)' in found[1]
    assert '"description" (line 4), "ip address" (line 5)' in found[4]
    assert found[4].startswith('interface lines other than "service-policy input" and "access-group input"')
    assert '"nat-pool" (line 8)' in found[8] and found[8].startswith("device and context-administration")
    assert found[26].startswith('"nat dynamic": servers see buddylb\'s address')
    ctx = config.contexts["Admin"]
    assert ctx.rservers["lnx1"].address == "127.0.1.11"  # the interface's ip address was not applied
    assert [c.vip_inservice for c in ctx.mm_policies["int"].classes] == [True]
    # the interface's service-policy and access-group take effect (SPEC §2.4)
    (itf,) = ctx.interfaces
    assert (itf.name, [r.name for r in itf.service_policies], [r.name for r in itf.access_groups]) == (
        "vlan 10",
        ["int"],
        ["ALL"],
    )
    assert [(e.seq, e.permit, e.protocol) for e in ctx.access_lists["ALL"].entries] == [(8, True, 0)]


def test_single_farm_buddy_real_group_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "one-farm.cfg"
    path.write_text(BASE.replace("  rserver lnx1 8080\n", "  rserver lnx1 8080\n    buddy-group blue\n"))
    config = load_config(path)
    (warning,) = config.warnings
    assert warning.line == 6 and warning.severity == "warning"
    assert 'buddy real group "blue" has members only in serverfarm "web"' in warning.message


def test_spec_example_without_a_sibling_farm_warns_but_loads(tmp_path: Path) -> None:
    write_cert_pair(tmp_path)
    text = (EXAMPLES / "shopping-cart.cfg").read_text().replace("    buddy-group red\n", "", 1)
    (tmp_path / "shop.cfg").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "shop.cfg")
    # lnx2 of farm "http" is now in no buddy real group while stick-cart joins alpha: an error
    # (named), and "red" now sits in one farm only: a warning.
    kinds = sorted((d.severity, d.line) for d in info.value.diagnostics)
    assert [k for k, _ in kinds] == ["error", "warning"]
    assert 'rserver "lnx2" of its serverfarm "http"' in str(info.value)
    assert warnings(info.value.diagnostics)[0].message.startswith('buddy real group "red"')


def test_examples_shopping_cart_needs_its_tls_files(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "shopping-cart.cfg", tmp_path / "shop.cfg")
    with pytest.raises(ConfigError, match="shop.crt does not exist"):
        load_config(tmp_path / "shop.cfg")
