"""ACE access-lists enforced at the accept boundary (SPEC §2.4), end to end: clients bound
to distinct 127.0.0.N addresses reach an interface-protected VIP only when its
access-group permits them; denied connections are closed at once, never reach a
server, and are counted in `show access-list` (API, CLI text and JSON) and /metrics.
A VIP that no access-group applies to stays open."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from tests.e2e.configs import farm, hosts
from tests.e2e.conftest import VIP
from tests.support.net import connect_from, http_get, read_all


def _config(ports) -> str:
    # a flat ACE paste: no indentation at all (SPEC §2.4); the global service-policy comes
    # before the interface, as in ACE's running-config (after it, the interface would own it)
    text = hosts("lnx1") + farm("web", [("lnx1", ports["a"], None)])
    text += f"""\
access-list WEB line 8 extended deny tcp host 127.0.0.66 any
access-list WEB line 16 extended permit tcp 127.0.0.0 255.255.255.192 host {VIP} eq {ports['vip']}
class-map match-all PROTECTED
2 match virtual-address {VIP} tcp eq {ports['vip']}
class-map match-all OPEN
2 match virtual-address {VIP} tcp eq {ports['vip2']}
policy-map type loadbalance first-match LB
class class-default
serverfarm web
policy-map multi-match CLIENTS
class PROTECTED
loadbalance vip inservice
loadbalance policy LB
policy-map multi-match EVERYONE
class OPEN
loadbalance vip inservice
loadbalance policy LB
service-policy input EVERYONE
interface vlan 100
ip address 10.1.1.2 255.255.255.0
access-group input WEB
service-policy input CLIENTS
no shutdown
"""
    return "\n".join(line.lstrip() for line in text.splitlines()) + "\n"


def _refused(source: str, port: int) -> bool:
    """True when the connection is closed before any byte comes back."""
    try:
        s = connect_from(source, VIP, port)
    except OSError:
        return True
    try:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        except OSError:
            return True
        return read_all(s) == b""
    finally:
        s.close()


def test_access_group_on_an_interface_filters_its_vips(ports, backends, balancer):
    web = backends.tcp("lnx1", "127.0.1.11", ports["a"])
    lb = balancer(_config(ports))
    permitted = connect_from("127.0.0.10", VIP, ports["vip"])
    assert permitted.makefile("rb").readline().strip() == b"lnx1"
    permitted.close()
    before = web.connections
    assert _refused("127.0.0.66", ports["vip"])  # line 8: deny host
    assert _refused("127.0.0.70", ports["vip"])  # outside 127.0.0.0/26: implicit deny
    assert _refused("127.0.0.71", ports["vip"])
    assert web.connections == before  # no denied client reached the server
    # the VIP of a policy activated outside the interface has no access-group: open to all
    s = connect_from("127.0.0.66", VIP, ports["vip2"])
    assert s.makefile("rb").readline().strip() == b"lnx1"
    s.close()

    data = lb.api("/show/access-list")["data"]
    (acl,) = data["access_lists"]
    assert [(ln["line"], ln["action"], ln["hits"]) for ln in acl["lines"]] == [(8, "deny", 1), (16, "permit", 1)]
    (vip,) = data["vips"]
    assert (vip["vip"], vip["denied"], vip["implicit_deny"]) == (f"{VIP}:{ports['vip']}", 3, 2)

    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert f'buddylb_acl_denied_total{{context="Admin",vip="{VIP}:{ports["vip"]}"}} 3.0' in metrics
    assert 'buddylb_acl_hits_total{access_list="WEB",context="Admin",line="16"} 1.0' in metrics

    cli = [sys.executable, "-m", "buddylb", "show", "access-list", "WEB", "--admin", lb.admin]
    text = subprocess.run(cli, capture_output=True, text=True, timeout=30)
    assert text.returncode == 0, text.stderr
    assert "deny tcp host 127.0.0.66 any" in text.stdout and "implicit deny" in text.stdout
    as_json = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=30)
    assert json.loads(as_json.stdout)["vips"][0]["denied"] == 3


def test_no_access_group_means_no_filtering(ports, backends, balancer):
    backends.http("lnx1", "127.0.1.11", ports["a"])
    text = _config(ports).replace("access-group input WEB\n", "")
    balancer(text)
    assert http_get("127.0.0.70", VIP, ports["vip"])[0] == 200


def test_access_group_on_a_tls_terminated_vip(ports, backends, balancer):
    """The gate hands a permitted TLS connection to the L7 proxy after the handshake and
    aborts a denied one before any request is read."""
    import ssl

    backends.http("lnx1", "127.0.1.11", ports["a"])
    text = hosts("lnx1") + farm("web", [("lnx1", ports["a"], None)])
    text += f"""\
access-list TLS line 8 extended permit tcp host 127.0.0.10 any
ssl-proxy service SHOP-TLS
  cert shop.crt
  key shop.key
class-map match-all V
  2 match virtual-address {VIP} tcp eq {ports['vip']}
policy-map type loadbalance http first-match LB
  class class-default
    serverfarm web
policy-map multi-match PM
  class V
    loadbalance vip inservice
    loadbalance policy LB
    ssl-proxy server SHOP-TLS
access-group input TLS
service-policy input PM
"""
    lb = balancer(text, certs=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def get(source: str) -> bytes:
        raw = connect_from(source, VIP, ports["vip"])
        try:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
                return read_all(s)
        except (ssl.SSLError, OSError):
            return b""

    assert get("127.0.0.10").endswith(b"lnx1")
    assert get("127.0.0.11") == b""
    data = lb.api("/show/access-list")["data"]
    assert (data["vips"][0]["denied"], data["access_lists"][0]["lines"][0]["hits"]) == (1, 1)
