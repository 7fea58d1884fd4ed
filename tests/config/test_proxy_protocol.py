"""`send-proxy v1|v2` (serverfarm host) and `loadbalance vip accept-proxy CIDR` (multi-match
class), SPEC §2.1: what they compile to, and each wrong use reported once with file,
line and the fix, by `buddylb check` too."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from click.testing import CliRunner

from buddylb.cli import main
from buddylb.core.compile import compile_config
from tests.config.support import assert_one_error, diagnose, errors

FARM = """\
rserver host lnx1
  ip address 127.0.1.11
  inservice
serverfarm host web
  send-proxy v2
  rserver lnx1 8080
    inservice
"""  # 7 lines


def vip(extra: str = "", proto: str = "tcp", ssl: str = "") -> str:
    return FARM + f"""\
policy-map type loadbalance first-match lb
  class class-default
    serverfarm web
class-map match-all v
  2 match virtual-address 127.0.0.100 {proto} eq 80
policy-map multi-match pm
  class v
    loadbalance vip inservice
    loadbalance policy lb
{extra}{ssl}service-policy input pm
"""  # the class body ends on line 16; `extra` starts on line 17


def test_both_compile() -> None:
    config, diags = diagnose(vip("    loadbalance vip accept-proxy 127.0.0.0/8\n    loadbalance vip accept-proxy ::1\n"))
    assert errors(diags) == []
    snap = compile_config(config, Path("/"))
    assert snap.contexts["Admin"].farms["web"].send_proxy == 2
    (v,) = snap.vips.values()
    assert v.accept_proxy == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def test_defaults_are_off() -> None:
    config, diags = diagnose(vip().replace("  send-proxy v2\n", ""))
    assert errors(diags) == []
    snap = compile_config(config, Path("/"))
    assert snap.contexts["Admin"].farms["web"].send_proxy == 0
    assert next(iter(snap.vips.values())).accept_proxy == ()


def test_v1_is_version_1() -> None:
    config, _ = diagnose(vip().replace("send-proxy v2", "send-proxy v1"))
    assert compile_config(config, Path("/")).contexts["Admin"].farms["web"].send_proxy == 1


CASES = [
    ("version", FARM.replace("send-proxy v2", "send-proxy v3"), 5, 'PROXY protocol version "v3" is not one of v1, v2'),
    ("no-version", FARM.replace("send-proxy v2", "send-proxy"), 5, "missing the PROXY protocol version"),
    ("repeated", FARM.replace("send-proxy v2", "send-proxy v2\n  send-proxy v1"), 6, '"send-proxy" is repeated'),
    ("trailing", FARM.replace("send-proxy v2", "send-proxy v2 now"), 5, '"now" is not expected'),
    ("cidr", vip("    loadbalance vip accept-proxy 10.0.0.300/8\n"), 17, "is not an address or CIDR network"),
    ("host-bits", vip("    loadbalance vip accept-proxy 10.1.2.3/8\n"), 17, "has host bits set; write 10.0.0.0/8"),
    ("no-cidr", vip("    loadbalance vip accept-proxy\n"), 17, "missing the accept-proxy network"),
    ("twice", vip("    loadbalance vip accept-proxy 10.0.0.0/8\n    loadbalance vip accept-proxy 10.0.0.0/8\n"), 18,
     "already listed on line 17"),
    ("udp-accept", vip("    loadbalance vip accept-proxy 10.0.0.0/8\n", proto="udp").replace("  send-proxy v2\n", ""),
     16, "read on TCP connections only"),
    ("udp-send", vip(proto="udp"), 10, "opens TCP connections only"),
]


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_error_on_the_right_line(text: str, line: int, expected: str) -> None:
    assert_one_error(text, line, expected)


def test_accept_proxy_on_a_tls_vip(tmp_path: Path) -> None:
    from tests.config.support import write_cert_pair

    write_cert_pair(tmp_path)
    text = vip("    loadbalance vip accept-proxy 127.0.0.0/8\n", ssl="    ssl-proxy server TLS\n")
    text += "ssl-proxy service TLS\n  cert shop.crt\n  key shop.key\n"
    config, diags = diagnose(text, tmp_path)
    assert errors(diags) == []  # the header comes in clear text before the ClientHello (io/proxied.py)
    (v,) = compile_config(config, tmp_path).vips.values()
    assert v.tls is not None and v.accept_proxy == (ipaddress.ip_network("127.0.0.0/8"),)


def test_buddylb_check_reports_them(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text(vip("    loadbalance vip accept-proxy 10.1.2.3/8\n").replace("send-proxy v2", "send-proxy 2"))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert f"{path}:5" in out and 'PROXY protocol version "2" is not one of v1, v2' in out
    assert f"{path}:17" in out and "write 10.0.0.0/8" in out
