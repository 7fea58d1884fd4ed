"""Positive tests of the configuration front end (SPEC §2): the SPEC example, both
examples/ files, and every command of §2.1 in at least one test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buddylb.config import units
from buddylb.config.lexer import lex
from buddylb.config.model import DEFAULT_STICKY_TIMEOUT_S, DEFAULT_TIMEOUTS, Config, Context
from buddylb.config.parser import load_config, parse_text
from buddylb.errors import ConfigError
from tests.config.support import EXAMPLES, diagnose, errors

# A complete rserver + farm + L4 policy to hang single commands on.
BASE = """\
rserver host lnx1
  ip address 127.0.1.11
  inservice
serverfarm host web
  rserver lnx1 8080
    inservice
"""


def clean(text: str, base_dir: Path | None = None) -> Config:
    """Parse + validate `text` and insist on no diagnostics at all."""
    config, diagnostics = diagnose(text, base_dir)
    assert diagnostics == [], "\n".join(str(d) for d in diagnostics)
    return config


def admin(text: str) -> Context:
    return clean(text).contexts["Admin"]


# --- the SPEC §2 example -----------------------------------------------------------


def test_spec_example_loads_with_its_values(tls_dir: Path) -> None:
    path = tls_dir / "shopping-cart.cfg"
    shutil.copy(EXAMPLES / "shopping-cart.cfg", path)
    config = load_config(path)
    assert config.warnings == []
    assert config.file == str(path)
    assert list(config.contexts) == ["Admin"]
    ctx = config.contexts["Admin"]

    assert {n: (r.address, r.inservice) for n, r in ctx.rservers.items()} == {
        "lnx1": ("127.0.1.11", True),
        "lnx2": ("127.0.1.12", True),
    }
    probe = ctx.probes["TCP-CHECK"]
    assert (probe.kind, probe.interval_s, probe.faildetect, probe.passdetect_interval_s) == (
        "tcp",
        2.0,
        2,
        2.0,
    )
    assert (probe.passdetect_count, probe.open_timeout_s, probe.port) == (3, 1.0, None)  # SPEC defaults

    http, decrypted = ctx.farms["http"], ctx.farms["decrypted"]
    assert http.predictor.kind == "roundrobin"
    assert [r.name for r in http.probes] == ["TCP-CHECK"]
    assert [(m.name, m.port, m.buddy_group, m.inservice) for m in http.members] == [
        ("lnx1", 8080, "blue", True),
        ("lnx2", 8080, "red", True),
    ]
    assert [(m.name, m.port, m.buddy_group) for m in decrypted.members] == [
        ("lnx1", 8443, "blue"),
        ("lnx2", 8443, "red"),
    ]
    assert decrypted.probes == [] and not decrypted.fail_action_purge

    cart, credit = ctx.stickies["stick-cart"], ctx.stickies["stick-credit"]
    for sg, farm in ((cart, "http"), (credit, "decrypted")):
        assert (sg.kind, sg.netmask, sg.address, sg.buddy_group) == (
            "ip-netmask",
            "255.255.255.255",
            "both",
            "alpha",
        )
        assert sg.timeout_s == 1800.0  # `timeout 30` = 30 minutes (SPEC §2.2)
        assert sg.farm is not None and sg.farm.name == farm

    va = {name: cm.matches for name, cm in ctx.class_maps.items()}
    assert [(m.seq, m.kind, m.address, m.port_op, m.port_lo) for m in va["http-vip"]] == [
        (2, "virtual-address", "127.0.0.100", "eq", 80)
    ]
    assert [(m.address, m.port_lo, m.port_hi) for m in va["https-vip"]] == [("127.0.0.100", 443, 443)]
    assert all(cm.match_all and not cm.http for cm in ctx.class_maps.values())

    lb = ctx.lb_policies["http-sticky"]
    assert not lb.http
    assert [(c.name, c.sticky.name if c.sticky else None) for c in lb.classes] == [
        ("class-default", "stick-cart")
    ]
    mm = ctx.mm_policies["int"]
    assert [
        (c.name, c.vip_inservice, c.lb_policy and c.lb_policy.name, c.ssl_proxy and c.ssl_proxy.name)
        for c in mm.classes
    ] == [
        ("http-vip", True, "http-sticky", None),
        ("https-vip", True, "https-sticky", "SHOP-TLS"),
    ]
    tls = ctx.ssl_proxies["SHOP-TLS"]
    assert (tls.cert, tls.key, tls.chain) == ("shop.crt", "shop.key", None)
    assert [r.name for r in ctx.service_policies] == ["int"]
    assert ctx.max_entries == 1_048_576


def test_spec_example_parses_without_its_tls_files() -> None:
    """Pure parse: no diagnostics before the TLS files are looked at."""
    config, diagnostics = parse_text((EXAMPLES / "shopping-cart.cfg").read_text(), "shop.cfg")
    assert diagnostics == []
    assert config.contexts["Admin"].ssl_proxies["SHOP-TLS"].cert_line > 0


def test_web_app_tiers_example_loads() -> None:
    config = load_config(EXAMPLES / "web-app-tiers.cfg")
    assert config.warnings == []
    ctx = config.contexts["Admin"]
    web, app = ctx.farms["web"], ctx.farms["app"]
    assert [(m.name, m.port, m.buddy_group) for m in web.members] == [
        ("lnx1", 8080, "blue"),
        ("lnx2", 8080, "blue"),
        ("lnx3", 8080, "red"),
        ("lnx4", 8080, "red"),
    ]
    assert [(m.name, m.port, m.buddy_group) for m in app.members] == [
        ("db1", 9000, "blue"),
        ("db2", 9000, "red"),
    ]
    assert [ctx.rservers[n].address for n in ("lnx1", "lnx4", "db1", "db2")] == [
        "127.0.1.11",
        "127.0.1.14",
        "127.0.1.21",
        "127.0.1.22",
    ]
    assert {sg.buddy_group for sg in ctx.stickies.values()} == {"tiers"}
    assert {sg.address for sg in ctx.stickies.values()} == {"source"}
    assert ctx.lb_policies["web-policy"].http and not ctx.lb_policies["app-policy"].http
    ports = sorted(m.port_lo for cm in ctx.class_maps.values() for m in cm.matches)
    assert ports == [80, 9000]


# --- rserver, serverfarm, predictor -------------------------------------------------


def test_rserver_host_attributes() -> None:
    ctx = admin(
        "rserver host a\n  ip address 127.0.1.1\n  weight 20\n  conn-limit max 100 min 80\n  inservice\n"
        "rserver host b\n  ip address ::0001\n  conn-limit max 5\n  no inservice\n"
        "rserver host c\n  ip address 127.0.1.3\n"
    )
    a, b, c = ctx.rservers["a"], ctx.rservers["b"], ctx.rservers["c"]
    assert (a.address, a.address_line, a.weight, a.conn_max, a.conn_min, a.inservice) == (
        "127.0.1.1",
        2,
        20,
        100,
        80,
        True,
    )
    assert (b.address, b.conn_max, b.conn_min, b.inservice) == ("::1", 5, None, False)
    assert (c.weight, c.inservice) == (None, False)  # defaults: host weight 8, out of service (ACE)


def test_farm_member_attributes_and_port_names() -> None:
    ctx = admin(
        BASE + "serverfarm host f\n"
        "  fail-action purge\n"
        "  rserver lnx1 www\n    weight 3\n    conn-limit max 10 min 2\n    backup\n    no inservice\n"
        "  rserver lnx1 HTTPS\n    buddy-group g1\n"
        "  rserver lnx1\n"
        "serverfarm host g\n  failaction purge\n  rserver lnx1 domain\n    buddy-group g1\n"
    )
    f = ctx.farms["f"]
    assert f.fail_action_purge and ctx.farms["g"].fail_action_purge
    m1, m2, m3 = f.members
    assert (m1.port, m1.weight, m1.conn_max, m1.conn_min, m1.backup, m1.inservice) == (
        80,
        3,
        10,
        2,
        True,
        False,
    )
    assert (m2.port, m2.buddy_group, m2.backup) == (443, "g1", False)
    assert m3.port is None  # the VIP's port
    assert ctx.farms["g"].members[0].port == 53
    assert not ctx.farms["web"].fail_action_purge


@pytest.mark.parametrize(
    ("line", "kind", "address", "mask"),
    [
        ("predictor roundrobin", "roundrobin", "source", None),
        ("predictor leastconns", "leastconns", "source", None),
        ("predictor hash address", "hash", "source", None),
        ("predictor hash address source", "hash", "source", None),
        ("predictor hash address source 255.255.255.0", "hash", "source", "255.255.255.0"),
        ("predictor hash address destination", "hash", "destination", None),
        ("PREDICTOR Hash Address Destination 255.255.0.0", "hash", "destination", "255.255.0.0"),
    ],
)
def test_predictors(line: str, kind: str, address: str, mask: str | None) -> None:
    farm = admin(BASE + f"serverfarm host f\n  {line}\n").farms["f"]
    assert (farm.predictor.kind, farm.predictor.hash_address, farm.predictor.hash_mask) == (
        kind,
        address,
        mask,
    )
    assert farm.predictor.line == 8


# --- probes ----------------------------------------------------------------------


def test_probe_tcp_and_http() -> None:
    ctx = admin(
        "probe tcp T\n  port 8081\n  interval 5s\n  faildetect 4\n  passdetect interval 1m\n"
        "  passdetect count 2\n  open 500ms\n"
        "probe http H\n  request method head url /health?full=1\n  expect status 200 399\n"
        '  header Host header-value "shop.example"\n  header X-Check header-value "a \\"b\\" c"\n'
        "probe http D\n  port https\n"
        + BASE.replace("serverfarm host web\n", "serverfarm host web\n  probe T\n  probe H\n")
    )
    t, h, d = ctx.probes["T"], ctx.probes["H"], ctx.probes["D"]
    assert (
        t.kind,
        t.port,
        t.interval_s,
        t.faildetect,
        t.passdetect_interval_s,
        t.passdetect_count,
        t.open_timeout_s,
    ) == (
        "tcp",
        8081,
        5.0,
        4,
        60.0,
        2,
        0.5,
    )
    assert (h.kind, h.method, h.url, h.expect_lo, h.expect_hi) == ("http", "HEAD", "/health?full=1", 200, 399)
    assert [(x.name, x.value) for x in h.headers] == [("Host", "shop.example"), ("X-Check", 'a "b" c')]
    assert (d.port, d.method, d.url, d.expect_lo, d.expect_hi, d.interval_s) == (
        443,
        "GET",
        "/",
        200,
        299,
        15.0,
    )
    assert [r.name for r in ctx.farms["web"].probes] == ["T", "H"]


def test_probe_request_without_url_and_single_status() -> None:
    p = admin("probe http H\n  request method get\n  expect status 204\n").probes["H"]
    assert (p.method, p.url, p.expect_lo, p.expect_hi) == ("GET", "/", 204, 204)


# --- sticky groups ------------------------------------------------------------------


def test_sticky_ip_netmask_with_v6_prefix_and_options() -> None:
    ctx = admin(
        "sticky-store redis://127.0.0.1:6379/0\n"  # `replicate sticky` without one warns (SPEC §2.3)
        + BASE + "serverfarm host spare\n  rserver lnx1 8081\n    inservice\n"
        "sticky ip-netmask 255.255.255.0 address source S\n"
        "  v6-prefix 64\n  timeout 2h\n  timeout activeconns\n  replicate sticky\n  serverfarm web backup spare\n"
        "sticky ip-netmask 255.255.255.255 address destination D\n  serverfarm web\n"
    )
    s, d = ctx.stickies["S"], ctx.stickies["D"]
    assert (s.kind, s.netmask, s.address, s.v6_prefix, s.timeout_s, s.activeconns, s.replicate) == (
        "ip-netmask",
        "255.255.255.0",
        "source",
        64,
        7200.0,
        True,
        True,
    )
    assert s.farm is not None and s.backup_farm is not None
    assert (s.farm.name, s.backup_farm.name, s.backup_farm.line) == ("web", "spare", 16)
    assert (d.address, d.v6_prefix, d.timeout_s, d.activeconns, d.backup_farm) == (
        "destination",
        None,
        DEFAULT_STICKY_TIMEOUT_S,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("written", "seconds"), [("30", 1800.0), ("90s", 90.0), ("1h", 3600.0), ("1.5m", 90.0), ("250ms", 0.25)]
)
def test_sticky_timeout_units(written: str, seconds: float) -> None:
    sg = admin(
        BASE + f"sticky ip-netmask 255.255.255.255 address both S\n  timeout {written}\n  serverfarm web\n"
    ).stickies["S"]
    assert sg.timeout_s == seconds


def test_sticky_http_kinds() -> None:
    ctx = admin(
        BASE + "sticky http-cookie SHOPID ins\n  cookie insert browser-expire\n  serverfarm web\n"
        "sticky http-cookie JSESSIONID learn\n  serverfarm web\n"
        "sticky http-cookie SID plain-insert\n  cookie insert\n  serverfarm web\n"
        "sticky http-header X-User hdr\n  serverfarm web\n"
        "sticky ssl-session tls\n  serverfarm web\n"
        "policy-map type loadbalance http first-match l7\n"
        "  class class-default\n    sticky-serverfarm ins\n"
    )
    ins, learn, plain = ctx.stickies["ins"], ctx.stickies["learn"], ctx.stickies["plain-insert"]
    assert (ins.kind, ins.cookie_name, ins.cookie_insert, ins.browser_expire) == (
        "http-cookie",
        "SHOPID",
        True,
        True,
    )
    assert (learn.cookie_name, learn.cookie_insert, learn.browser_expire) == ("JSESSIONID", False, False)
    assert (plain.cookie_insert, plain.browser_expire) == (True, False)
    assert (ctx.stickies["hdr"].kind, ctx.stickies["hdr"].header_name) == ("http-header", "X-User")
    assert ctx.stickies["tls"].kind == "ssl-session"


def test_buddy_sticky_group_of_two_farms_is_clean() -> None:
    ctx = admin(
        BASE.replace("    inservice\n", "    buddy-group blue\n    inservice\n")
        + "serverfarm host api\n  rserver lnx1 9000\n    buddy-group blue\n"
        "sticky ip-netmask 255.255.255.255 address source S1\n  timeout 100\n  serverfarm web\n  buddy-group g\n"
        "sticky ip-netmask 255.255.255.0 address source S2\n  timeout 30\n  serverfarm api\n  buddy-group g\n"
    )
    assert [(s.buddy_group, s.buddy_group_line) for s in ctx.stickies.values()] == [("g", 14), ("g", 18)]
    assert ctx.farms["api"].members[0].buddy_group == "blue"


# --- class-maps and policy-maps ---------------------------------------------------------


def test_http_class_maps() -> None:
    ctx = admin(
        "class-map type http loadbalance match-any static\n"
        "  20 match http url .*\\.css\n"
        "  10 match http url /static/.*\n"
        "class-map type http loadbalance match-all api\n"
        '  1 match http header Host header-value "api\\.example\\.com"\n'
        "  2 match http cookie tier cookie-value gold|silver\n"
        "class-map type http loadbalance plain\n  5 match http url /\n"
    )
    static, api = ctx.class_maps["static"], ctx.class_maps["api"]
    assert static.http and not static.match_all
    assert [(m.seq, m.kind, m.regex) for m in static.matches] == [
        (10, "url", "/static/.*"),
        (20, "url", ".*\\.css"),
    ]
    assert api.http and api.match_all
    assert [(m.kind, m.name, m.regex) for m in api.matches] == [
        ("header", "Host", "api\\.example\\.com"),
        ("cookie", "tier", "gold|silver"),
    ]
    assert ctx.class_maps["plain"].match_all  # ACE's default


def test_virtual_address_forms() -> None:
    ctx = admin(
        "class-map match-any many\n"
        "  10 match virtual-address 127.0.0.10 tcp range 8000 8002\n"
        "  20 match virtual-address 127.0.0.11 255.255.255.255 tcp eq https\n"
        "  30 match virtual-address ::1 tcp eq 8443\n"
    )
    ms = ctx.class_maps["many"].matches
    assert [(m.address, m.mask, m.protocol, m.port_op, m.port_lo, m.port_hi) for m in ms] == [
        ("127.0.0.10", None, "tcp", "range", 8000, 8002),
        ("127.0.0.11", "255.255.255.255", "tcp", "eq", 443, 443),
        ("::1", None, "tcp", "eq", 8443, 8443),
    ]


def test_load_balance_policies_and_multi_match() -> None:
    ctx = admin(
        BASE + "serverfarm host spare\n  rserver lnx1 8081\n    inservice\n"
        "class-map type http loadbalance match-any static\n  10 match http url /static/.*\n"
        "class-map vip\n  1 match virtual-address 127.0.0.100 tcp eq 80\n"
        "policy-map type loadbalance http first-match l7\n"
        "  class class-default\n    serverfarm web\n"
        "  class static\n    serverfarm spare backup web\n"
        "policy-map multi-match mm\n"
        "  class vip\n    loadbalance vip inservice\n    loadbalance policy l7\n"
        "service-policy input mm\n"
    )
    l7 = ctx.lb_policies["l7"]
    assert l7.http
    # class-default is always last, wherever it is written (as on ACE).
    assert [c.name for c in l7.classes] == ["static", "class-default"]
    static = l7.classes[0]
    assert static.farm is not None and static.backup_farm is not None
    assert (static.farm.name, static.backup_farm.name) == ("spare", "web")
    (cls,) = ctx.mm_policies["mm"].classes
    assert (cls.name, cls.vip_inservice, cls.lb_policy and cls.lb_policy.name) == ("vip", True, "l7")


def test_no_loadbalance_vip_inservice() -> None:
    ctx = admin(
        BASE + "policy-map type loadbalance first-match l4\n  class class-default\n    serverfarm web\n"
        "class-map vip\n  1 match virtual-address 127.0.0.100 tcp eq 80\n"
        "policy-map multi-match mm\n  class vip\n    no loadbalance vip inservice\n    loadbalance policy l4\n"
    )
    assert ctx.mm_policies["mm"].classes[0].vip_inservice is False


def test_ssl_proxy_with_chain(tls_dir: Path) -> None:
    shutil.copy(tls_dir / "shop.crt", tls_dir / "chain.pem")
    config = clean('ssl-proxy service T\n  cert shop.crt\n  key "shop.key"\n  chain chain.pem\n', tls_dir)
    sp = config.contexts["Admin"].ssl_proxies["T"]
    assert (sp.cert, sp.cert_line, sp.key, sp.key_line, sp.chain, sp.chain_line) == (
        "shop.crt",
        2,
        "shop.key",
        3,
        "chain.pem",
        4,
    )


# --- contexts and global lines ---------------------------------------------------------


def test_contexts() -> None:
    config = clean(
        BASE + "context Shop\n" + BASE + "sticky-table max-entries 1000\n"
        "context Admin\n"
        "sticky-table max-entries 50\n"
        "rserver host only-admin\n  ip address 127.0.1.99\n"
        "context Shop\n"
        "rserver host only-shop\n  ip address 127.0.1.98\n"
    )
    assert list(config.contexts) == ["Admin", "Shop"]
    a, s = config.contexts["Admin"], config.contexts["Shop"]
    assert (a.line, s.line) == (1, 7)
    assert set(a.rservers) == {"lnx1", "only-admin"} and set(s.rservers) == {"lnx1", "only-shop"}
    assert (a.max_entries, s.max_entries) == (50, 1000)


def test_global_lines() -> None:
    config = clean(
        "sticky-store redis://127.0.0.1:6379/2 prefix shop: timeout 20\n"
        "trusted-proxy 10.0.0.0/8\ntrusted-proxy 192.0.2.7\ntrusted-proxy 2001:db8::/32\n"
        "timeout client 2m\ntimeout http-request 500ms\ntimeout connect 4\n"
        "context Admin\n" + BASE
    )
    assert config.sticky_store is not None
    assert (config.sticky_store.url, config.sticky_store.prefix, config.sticky_store.timeout_s) == (
        "redis://127.0.0.1:6379/2",
        "shop:",
        0.02,  # a bare number is milliseconds (SPEC §2.2)
    )
    assert config.trusted_proxies == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    assert config.timeouts == {**DEFAULT_TIMEOUTS, "client": 120.0, "http-request": 0.5, "connect": 4.0}
    assert not config.underscores_in_headers  # dropped unless allowed (SPEC §5)


def test_underscores_in_headers() -> None:
    assert clean("http underscores-in-headers allow\n").underscores_in_headers
    assert not clean("http underscores-in-headers drop\n").underscores_in_headers


def test_sticky_store_defaults() -> None:
    config = clean("sticky-store redis://localhost\n")
    assert config.sticky_store is not None
    assert (config.sticky_store.prefix, config.sticky_store.timeout_s, config.sticky_store.line) == (
        "buddylb:",
        0.05,
        1,
    )
    assert config.contexts == {}


# --- lexical rules ------------------------------------------------------------------------


def test_comments_of_all_forms() -> None:
    ctx = admin(
        "! a full-line comment\n"
        "# another one\n"
        "rserver host lnx1     ! trailing bang comment\n"
        "   ! an indented comment line does not close the block\n"
        "  ip address 127.0.1.11 # trailing hash comment\n"
        "\t# tab then comment\n"
        "  inservice\t! tab then trailing comment\n"
        "probe http H\n"
        '  header X-Note header-value "keep ! this # too"\n'
        "  request method get url /a!b\n"
    )
    assert ctx.rservers["lnx1"].address == "127.0.1.11" and ctx.rservers["lnx1"].inservice
    assert ctx.probes["H"].headers[0].value == "keep ! this # too"
    assert ctx.probes["H"].url == "/a!b"  # `!` inside a word is not a comment


def test_crlf_tabs_blank_lines_bom_and_case() -> None:
    text = (
        "\ufeffRSERVER HOST Lnx1\r\n"
        "\tIP Address 127.0.1.11\r\n"
        "\r\n"
        "        \r\n"
        "\tInService\r\n"
        "rserver host lnx1\r\n"  # names are case-sensitive: another rserver
        "  \tip address 127.0.1.12\r\n"  # two blanks then a tab: column 8, same block
        "Serverfarm Host web\r\n"
        "\trserver Lnx1 8080\r\n"
        "\t\tWeight 5\r\n"
        "\t\tINSERVICE\r\n"
    )
    ctx = admin(text)
    assert set(ctx.rservers) == {"Lnx1", "lnx1"}
    assert ctx.rservers["Lnx1"].inservice and ctx.rservers["Lnx1"].address == "127.0.1.11"
    member = ctx.farms["web"].members[0]
    assert (member.name, member.weight, member.inservice, member.line) == ("Lnx1", 5, True, 9)


def test_lexer_indentation_and_quotes() -> None:
    lines, diagnostics = lex('a\n\tb\n  \tc\n         d "x y" "q\\"q" "back\\\\slash" "\\d+"\n', "f")
    assert diagnostics == []
    assert [(ln.number, ln.indent) for ln in lines] == [(1, 0), (2, 8), (3, 8), (4, 9)]
    assert lines[3].words == ("d", "x y", 'q"q', "back\\slash", "\\d+")
    assert lines[3].quoted == (False, True, True, True, True)


def test_quoted_word_is_never_a_keyword() -> None:
    _, diagnostics = diagnose('"rserver" host a\n')
    assert [d.line for d in errors(diagnostics)] == [1]


# --- units ----------------------------------------------------------------------------


def test_units() -> None:
    assert units.parse_time("30", "m") == 1800.0
    assert units.parse_time("30", "s") == 30.0
    assert units.parse_time("30", "ms") == 0.03
    assert units.parse_time("2S", "m") == 2.0
    assert units.parse_port("WWW") == 80 and units.parse_port("smtp") == 25 and units.parse_port("ftp") == 21
    assert units.mask_to_prefix("255.255.255.0") == 24 and units.mask_to_prefix("0.0.0.0") == 0
    assert units.prefix_to_mask(20) == "255.255.240.0"
    assert units.check_name("a" * 64, "name") == "a" * 64
    for bad in ("a" * 65, "a b", "lnx/1", ""):
        with pytest.raises(ValueError):
            units.check_name(bad, "name")
    with pytest.raises(ValueError, match="not contiguous"):
        units.mask_to_prefix("255.0.255.0")
    assert units.check_token("X-Forwarded-For", "header") == "X-Forwarded-For"
    with pytest.raises(ValueError):
        units.check_token("bad:name", "header")


# --- load_config ---------------------------------------------------------------------------


def test_load_config_reports_every_error_and_keeps_warnings(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_bytes(b"description my balancer\nrserver host a\n  ip address 999.1.1.1\nbogus\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(d.line, d.severity) for d in info.value.diagnostics]
    assert found == [(1, "warning"), (3, "error"), (4, "error")]
    assert f"{path}:3: error:" in str(info.value)

    good = tmp_path / "good.cfg"
    good.write_text("description my balancer\n" + BASE)
    config = load_config(good)
    assert [(d.line, d.severity) for d in config.warnings] == [(1, "warning")]


def test_load_config_unreadable_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.cfg")
    path = tmp_path / "latin1.cfg"
    path.write_bytes(b"rserver host a\n  ip address 127.0.0.1\n  description caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    errs = [d for d in info.value.diagnostics if d.severity == "error"]
    assert [(d.line, "UTF-8" in d.message) for d in errs] == [(3, True)]
