"""ACE configurations in the shapes of Cisco's published examples (tests/config/ace/),
each checked for the exact VIPs, farms, probes and access-list results it compiles to
(SPEC §2.4: a running-config loads as it is, and means what it meant on the ACE)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from buddylb.cli import main
from buddylb.config.parser import check_file
from buddylb.core.acl import TCP, UDP
from buddylb.core.compile import compile_config
from buddylb.core.snapshot import Snapshot
from buddylb.io.probes import build_targets
from tests.config.support import write_cert_pair

ACE = Path(__file__).resolve().parent / "ace"


def load(path: Path) -> tuple[Snapshot, list]:
    config, diagnostics = check_file(path)
    assert [d for d in diagnostics if d.severity == "error"] == [], [str(d) for d in diagnostics]
    return compile_config(config), diagnostics


def vips(snap: Snapshot) -> set[tuple[str, str, str]]:
    """(VIP, protocol, L4|L7|UDP) of every VIP, TCP and UDP."""
    out = {(v.name, "tcp", "L7" if v.policy.http else "L4") for v in snap.vips.values()}
    return out | {(v.name, "udp", "UDP") for v in snap.udp_vips.values()}


def members(snap: Snapshot, farm: str) -> list[tuple[str, str, int | None]]:
    return [(m.rserver, m.address, m.port) for m in snap.contexts["Admin"].farms[farm].members]


def probes(snap: Snapshot) -> set[tuple[str, str, str, int]]:
    return {(t.probe, t.farm, t.rserver, t.port) for t in build_targets(snap, [])}


def test_admin_context_with_device_commands() -> None:
    snap, diagnostics = load(ACE / "admin_context.cfg")
    assert vips(snap) == {("127.0.0.100:80", "tcp", "L4"), ("127.0.0.100:443", "tcp", "L4")}
    assert members(snap, "WEB-FARM") == [("WEB1", "127.0.1.11", 8080), ("WEB2", "127.0.1.12", 8080)]
    assert snap.contexts["Admin"].farms["WEB-FARM"].predictor.kind == "leastconns"
    assert probes(snap) == {("HTTP-PROBE", "WEB-FARM", "WEB1", 8080), ("HTTP-PROBE", "WEB-FARM", "WEB2", 8080),
                            ("TCP-PROBE", "TLS-FARM", "WEB1", 443), ("TCP-PROBE", "TLS-FARM", "WEB2", 443)}
    assert list(snap.contexts) == ["Admin"]  # `context SHOP` + allocate-interface defines another box
    web = snap.vips[("127.0.0.100", 80)].acl
    assert web is not None and [a.name for a in web.acls] == ["WEB-IN"]  # vlan 100's, not vlan 200's ALL
    assert web.decide(TCP, "127.0.0.10", 5000, "127.0.0.100", 80) == (True, "WEB-IN", 16)
    assert web.decide(TCP, "127.0.0.66", 5000, "127.0.0.100", 80) == (False, "WEB-IN", 8)
    assert web.decide(TCP, "127.0.1.10", 5000, "127.0.0.100", 80) == (False, None, None)  # implicit deny
    tls = snap.vips[("127.0.0.100", 443)].acl
    assert tls is not None and tls.decide(TCP, "127.0.1.10", 5000, "127.0.0.100", 443) == (True, "WEB-IN", 24)
    kinds = sorted({d.category for d in diagnostics})
    assert kinds == ["device", "interface", "mapping", "unused"] and len(diagnostics) == 5  # one screen


def test_flat_paste() -> None:
    """(That a flat paste and its indented form compile alike: test_modes.py.)"""
    flat_snap, diagnostics = load(ACE / "flat_paste.cfg")
    assert vips(flat_snap) == {("127.0.0.101:80", "tcp", "L4"), ("127.0.0.101:9000", "tcp", "L4")}
    assert members(flat_snap, "web") == [("lnx1", "127.0.1.21", 8080), ("lnx2", "127.0.1.22", 8080)]
    ctx = flat_snap.contexts["Admin"]
    assert members(flat_snap, "app") == [("lnx1", "127.0.1.21", 9000), ("lnx2", "127.0.1.22", 9000)]
    assert dict(ctx.buddy_of) == {("app", "lnx1"): "blue", ("app", "lnx2"): "red",
                                  ("web", "lnx1"): "blue", ("web", "lnx2"): "red"}
    assert ctx.scopes["tiers"].sticky_groups == ("WEB-S", "APP-S")
    assert probes(flat_snap) == {("TCP-CHECK", "app", "lnx1", 9000), ("TCP-CHECK", "app", "lnx2", 9000)}
    assert [d.category for d in diagnostics] == ["interface"]


def test_ssl_offload_with_parameter_maps(tmp_path: Path) -> None:
    shutil.copy(ACE / "ssl_offload.cfg", tmp_path / "ssl_offload.cfg")
    write_cert_pair(tmp_path)
    snap, diagnostics = load(tmp_path / "ssl_offload.cfg")
    assert vips(snap) == {("127.0.0.102:443", "tcp", "L7")}
    vip = snap.vips[("127.0.0.102", 443)]
    assert vip.tls is not None and vip.tls.ciphers == ("AES128-SHA", "AES256-SHA")
    assert vip.tls.min_version == "TLSv1_2"
    assert members(snap, "PLAIN") == [("S1", "127.0.1.31", 80), ("S2", "127.0.1.32", 80)]
    assert dict(vip.policy.inserts) == {"API": ((b"x-client-ip", "%is"),),
                                        "class-default": ((b"x-client-ip", "%is"), (b"x-forwarded-port", "%pd"))}
    learned = snap.contexts["Admin"].stickies["LEARNED"]
    assert dict(learned.statics) == {"s1-pinned": ("S1", 80)}
    assert snap.contexts["Admin"].scopes["COOKIE-STICKY"].cookie_insert
    assert vip.acl is None  # no access-group: not filtered
    assert {d.category for d in diagnostics} == {"unused", "mapping"}


def test_dns_udp_farm_with_acls() -> None:
    snap, _ = load(ACE / "dns_udp.cfg")
    assert vips(snap) == {("127.0.0.103:53", "tcp", "L4"), ("127.0.0.103:53", "udp", "UDP")}
    assert members(snap, "RESOLVERS") == [("NS1", "127.0.1.41", None), ("NS2", "127.0.1.42", None)]
    assert probes(snap) == {("DNS-TCP", "RESOLVERS", "NS1", 53), ("DNS-TCP", "RESOLVERS", "NS2", 53)}
    udp = snap.udp_vips[("127.0.0.103", 53)].acl
    tcp = snap.vips[("127.0.0.103", 53)].acl
    assert udp is not None and tcp is not None
    assert udp.decide(UDP, "127.0.0.7", 3333, "127.0.0.103", 53) == (True, "DNS-IN", 16)
    assert udp.decide(UDP, "127.0.0.66", 3333, "127.0.0.103", 53) == (False, "DNS-IN", 8)
    assert tcp.decide(TCP, "127.0.0.7", 3333, "127.0.0.103", 53) == (True, "DNS-IN", 24)
    assert tcp.decide(TCP, "127.0.2.7", 3333, "127.0.0.103", 53) == (False, "DNS-IN", 32)  # explicit deny ip


def test_several_probes_as_the_ace_has_them() -> None:
    snap, diagnostics = load(ACE / "probes.cfg")
    assert vips(snap) == {("127.0.0.104:8080", "tcp", "L4"), ("127.0.0.104:25", "tcp", "L4")}
    assert probes(snap) == {
        ("HEALTH", "APPS", "APP1", 8080), ("HEALTH", "APPS", "APP2", 8080),
        ("HEALTH-TLS", "APPS", "APP1", 8443), ("HEALTH-TLS", "APPS", "APP2", 8443),
        ("PING", "APPS", "APP1", 8080), ("PING", "MAIL", "APP1", 25),  # under rserver host: every farm
        ("SMTP-BANNER", "MAIL", "APP1", 25), ("SMTP-BANNER", "MAIL", "APP2", 25),
    }
    p = snap.contexts["Admin"].probes
    health = p["HEALTH"]
    assert (health.url, health.host, health.expect_ranges, health.expect_regex) == (
        "/health?deep=1", "shop.example.com", [(200, 204), (301, 302)], "status=(ok|degraded)")
    assert (health.receive_timeout_s, p["HEALTH-TLS"].receive_timeout_s) == (10.0, 5.0)
    assert (p["HEALTH-TLS"].kind, p["HEALTH-TLS"].ssl_min_version, p["HEALTH-TLS"].ssl_ciphers) == (
        "https", "TLSv1_2", ["AES128-SHA"])
    assert p["SMTP-BANNER"].forced_close and p["PING"].kind == "icmp"
    assert [d.line for d in diagnostics] == [17]  # ssl version
    assert snap.contexts["Admin"].farms["APPS"].predictor.slowstart_s == 30.0
    inband = snap.contexts["Admin"].farms["APPS"].inband
    assert inband is not None and inband.mode == "count"
    assert {d.category for d in diagnostics} == {"mapping"}


@pytest.mark.parametrize("name", ["admin_context.cfg", "flat_paste.cfg", "dns_udp.cfg", "probes.cfg"])
def test_buddylb_check_exits_0_and_fits_one_screen(name: str) -> None:
    result = CliRunner().invoke(main, ["check", str(ACE / name)])
    assert result.exit_code == 0, result.stderr
    assert len(result.stderr.splitlines()) <= 8 and "OK (1 context(s)" in result.stdout
