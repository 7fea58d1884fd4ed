"""The PROXY protocol against the real things (SPEC §2.1, issue 16 part 3).

- send-proxy: nginx behind buddylb (`listen ... proxy_protocol`) answers and logs
  `$proxy_protocol_addr`: the client's own 127.0.0.N and port, over v1 and v2, on L4 and
  L7 VIPs (L7: a pooled server connection is reused only for the same client address).
- accept-proxy: HAProxy in front of buddylb (`server ... send-proxy-v2`) passes each
  client's address through: stickiness keys on it, X-Forwarded-For and the access log
  show it; a chain HAProxy -> buddylb -> nginx carries it end to end.  Malformed, late
  and untrusted headers close the connection and are counted; LOCAL uses the real peer.
Every process (buddylb, nginx, HAProxy, the backends) runs on free ports and is stopped
at teardown.
"""
from __future__ import annotations

import socket
import struct
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from buddylb.admin.render import render_serverfarm
from buddylb.proxyproto import V2_SIGNATURE, build_local, build_v1, build_v2
from tests.support.net import connect_from, free_port, parse_response, read_all, wait_for
from tests.support.proxies import Haproxy, Nginx

VIP = "127.0.0.100"
NGINX_HOST = "127.0.1.31"
FRONT = "127.0.0.150"  # HAProxy's address, the only peer listed in accept-proxy


def get(source: str, port: int, preamble: bytes = b"", path: str = "/", keep: int = 1) -> tuple[int, list[tuple]]:
    """`keep` requests on one connection from `source` (its header first, if any); returns
    the connection's local port and each response (status, headers, body)."""
    s = connect_from(source, VIP, port)
    try:
        sport = s.getsockname()[1]
        out = []
        for i in range(keep):
            last = i == keep - 1
            s.sendall((preamble if i == 0 else b"") + f"GET {path} HTTP/1.1\r\nHost: vip\r\n"
                      f"{'Connection: close' if last else 'Connection: keep-alive'}\r\n\r\n".encode())
            out.append(parse_response(read_all(s) if last else _one_response(s)))
        return sport, out
    finally:
        s.close()


def _one_response(s: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
    while len(body) < n:
        body += s.recv(65536)
    return buf


def refused(source: str, port: int, data: bytes, wait: float = 5.0) -> bool:
    """Send `data`; True when buddylb closes without a byte of answer."""
    s = connect_from(source, VIP, port, timeout=wait)
    try:
        s.sendall(data)
        try:
            return s.recv(65536) == b""
        except ConnectionResetError:
            return True
    finally:
        s.close()


def metrics(lb) -> str:
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        return r.read().decode()


def nginx_config(p: dict, l7: bool = False) -> str:
    kind = "http " if l7 else ""
    text = f"rserver host ng\n  ip address {NGINX_HOST}\n  inservice\n"
    for v in (1, 2):
        text += f"serverfarm host pp{v}\n  send-proxy v{v}\n  rserver ng {p['nginx']}\n    inservice\n"
        text += (f"class-map match-all vip{v}\n  2 match virtual-address {VIP} tcp eq {p[f'vip{v}']}\n"
                 f"policy-map type loadbalance {kind}first-match lb{v}\n  class class-default\n    serverfarm pp{v}\n")
    text += "policy-map multi-match int\n"
    for v in (1, 2):
        text += f"  class vip{v}\n    loadbalance vip inservice\n    loadbalance policy lb{v}\n"
    return text + "service-policy input int\n"


@pytest.fixture
def nginx(tmp_path):
    ng = Nginx(tmp_path / "nginx", NGINX_HOST, free_port(NGINX_HOST), free_port(NGINX_HOST))
    ng.start()
    yield ng
    ng.stop()


def _ports() -> dict:
    return {"vip1": free_port(VIP), "vip2": free_port(VIP)}


# -- send-proxy ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_nginx_behind_an_l4_vip_sees_each_client(nginx, balancer, version: int) -> None:
    p = _ports() | {"nginx": nginx.port}
    lb = balancer(nginx_config(p))
    seen = {}
    for n in (21, 22, 23):
        client = f"127.0.0.{n}"
        sport, [(status, _, body)] = get(client, p[f"vip{version}"])
        assert status == 200 and body == f"{client} {sport}\n".encode(), body
        seen[client] = str(sport)
    assert wait_for(lambda: len(nginx.logged()) >= 3, 5)
    logged = {row[0]: row[1] for row in nginx.logged()}
    assert logged == seen  # nginx's own log: the real clients, not buddylb's address
    assert {row[2] for row in nginx.logged()} == {"127.0.0.1"}  # ... while the TCP peer was buddylb
    farm = lb.api(f"/show/serverfarm/pp{version}")["data"][0]
    assert farm["send_proxy"] == f"v{version}"  # `show serverfarm` says what the servers must accept
    assert f"send-proxy v{version}" in render_serverfarm([farm])


@pytest.mark.parametrize("version", [1, 2])
def test_nginx_behind_an_l7_vip_and_private_keep_alive(nginx, balancer, version: int) -> None:
    """Each request says its client's address; a pooled connection serves only the
    client address it was opened for (HAProxy makes such connections private)."""
    p = _ports() | {"nginx": nginx.port}
    balancer(nginx_config(p, l7=True))
    port = p[f"vip{version}"]
    a, b = "127.0.0.31", "127.0.0.32"
    a_port, got = get(a, port, keep=3)
    assert [r[2] for r in got] == [f"{a} {a_port}\n".encode()] * 3
    b_port, got = get(b, port, keep=2)
    assert [r[2] for r in got] == [f"{b} {b_port}\n".encode()] * 2
    _, got = get(a, port)  # a new connection of client a: its address again
    assert got[0][2].startswith(f"{a} ".encode())
    assert wait_for(lambda: len(nginx.logged()) >= 6, 5)
    conns: dict[str, set] = {}
    for row in nginx.logged():
        conns.setdefault(row[0], set()).add(row[3])
    assert set(conns) == {a, b}
    assert not conns[a] & conns[b]  # no nginx connection carried both clients


# -- accept-proxy ------------------------------------------------------------------------------------
def accept_config(p: dict, extra_mm: str = "") -> str:
    return f"""\
timeout http-request 2
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  inservice
serverfarm host web
  rserver lnx1 {p['lnx1']}
    inservice
  rserver lnx2 {p['lnx2']}
    inservice
sticky ip-netmask 255.255.255.255 address source by-client
  timeout 30
  serverfarm web
class-map match-all web-vip
  2 match virtual-address {VIP} tcp eq {p['vip']}
policy-map type loadbalance http first-match web-lb
  class class-default
    sticky-serverfarm by-client
policy-map multi-match int
  class web-vip
    loadbalance vip inservice
    loadbalance policy web-lb
    loadbalance vip accept-proxy {FRONT}/32
{extra_mm}service-policy input int
"""


@pytest.fixture
def web(backends, balancer):
    p = {"vip": free_port(VIP), "lnx1": free_port("127.0.1.11"), "lnx2": free_port("127.0.1.12")}
    servers = [backends.http("lnx1", "127.0.1.11", p["lnx1"]), backends.http("lnx2", "127.0.1.12", p["lnx2"])]
    lb = balancer(accept_config(p))
    return lb, p, servers


def _xff(servers) -> list[bytes]:
    return [h.get(b"x-forwarded-for") for s in servers for (_, h, _) in s.requests]


def test_haproxy_in_front_passes_the_client_through(web, tmp_path) -> None:
    def get(s: socket.socket) -> tuple[int, bytes]:
        s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        status, _, body = parse_response(read_all(s))
        s.close()
        return status, body

    assert_clients_pass_through(web, tmp_path, get)


def assert_clients_pass_through(web, tmp_path: Path, get: Callable[[socket.socket], tuple[int, bytes]]) -> None:
    """Six clients (127.0.0.41-46) open three connections each through HAProxy's
    send-proxy-v2 (`get`: one request on a connection, its status and body): buddylb sees
    each real client, not HAProxy, in stickiness, X-Forwarded-For and its access log."""
    lb, p, servers = web
    front_port = free_port(FRONT)
    hap = Haproxy(tmp_path / "haproxy", FRONT, front_port, f"{VIP}:{p['vip']} send-proxy-v2", source=FRONT)
    hap.start()
    try:
        landed: dict[str, set] = {}
        for n in range(6):
            client = f"127.0.0.{41 + n}"
            for _ in range(3):  # a new connection through HAProxy each time
                status, body = get(connect_from(client, FRONT, front_port))
                assert status == 200, body
                landed.setdefault(client, set()).add(body)
    finally:
        hap.stop()
    assert all(len(v) == 1 for v in landed.values()), landed  # each client stuck to one rserver
    assert set().union(*landed.values()) == {b"lnx1", b"lnx2"}  # keyed per client, not per HAProxy
    assert Counter(_xff(servers)) == {f"127.0.0.{41 + n}".encode(): 3 for n in range(6)}
    keys = {e["key"] for e in lb.api("/show/sticky-database")["data"]}
    assert keys == {f"127.0.0.{41 + n}" for n in range(6)}
    assert wait_for(lambda: lb.log.read_text().count(" outcome=") == 18, 5)  # the access log is buffered
    clients = Counter(line.split()[1] for line in lb.log.read_text().splitlines())
    assert clients == {f"127.0.0.{41 + n}": 3 for n in range(6)}  # the access log names the real clients


def test_chain_haproxy_buddylb_nginx(nginx, balancer, tmp_path) -> None:
    """client -> HAProxy (send-proxy-v2) -> buddylb L4 (accept-proxy, send-proxy v1) -> nginx."""
    p = _ports() | {"nginx": nginx.port}
    text = nginx_config(p).replace("    loadbalance policy lb2\n",
                                   f"    loadbalance policy lb2\n    loadbalance vip accept-proxy {FRONT}/32\n")
    balancer(text)
    front_port = free_port(FRONT)
    hap = Haproxy(tmp_path / "haproxy", FRONT, front_port, f"{VIP}:{p['vip2']} send-proxy-v2", source=FRONT)
    hap.start()
    try:
        for n in (61, 62):
            s = connect_from(f"127.0.0.{n}", FRONT, front_port)
            sport = s.getsockname()[1]
            s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            status, _, body = parse_response(read_all(s))
            s.close()
            assert status == 200 and body == f"127.0.0.{n} {sport}\n".encode(), body
    finally:
        hap.stop()


def test_headers_from_a_listed_peer(web) -> None:
    lb, p, servers = web
    port = p["vip"]
    # v1 and v2 headers name the client, even when they arrive in pieces
    _, [(status, _, _)] = get(FRONT, port, build_v1("10.9.8.7", 5555, VIP, port))
    assert status == 200
    s = connect_from(FRONT, VIP, port)
    head = build_v2("2001:db8::7", 6666, VIP, port)
    for piece in (head[:5], head[5:17], head[17:] + b"GET / HTTP/1.1\r\nHost: vip\r\n", b"Connection: close\r\n\r\n"):
        s.sendall(piece)
        time.sleep(0.05)
    assert parse_response(read_all(s))[0] == 200
    s.close()
    # LOCAL (v2) and UNKNOWN (v1): the real peer
    assert get(FRONT, port, build_local(2))[1][0][0] == 200
    assert get(FRONT, port, build_local(1))[1][0][0] == 200
    assert Counter(_xff(servers)) == {b"10.9.8.7": 1, b"2001:db8::7": 1, FRONT.encode(): 2}
    keys = {e["key"] for e in lb.api("/show/sticky-database")["data"]}
    assert keys == {"10.9.8.7", "2001:db8::7", FRONT}


def test_bad_late_and_untrusted_headers_close_the_connection(web) -> None:
    lb, p, servers = web
    port = p["vip"]
    assert refused(FRONT, port, b"PROXY TCP4 10.0.0.1 10.0.0.2 01 80\r\nGET / HTTP/1.1\r\n\r\n")  # leading zero
    assert refused(FRONT, port, V2_SIGNATURE + struct.pack("!BBH", 0x22, 0x11, 12) + b"\0" * 12)  # command 2
    assert refused(FRONT, port, b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")  # no header at all
    started = time.monotonic()
    assert refused(FRONT, port, b"PROXY TCP4 10.0.0.1")  # never completed: `timeout http-request 2`
    assert 1.5 < time.monotonic() - started < 4.5
    # a peer outside accept-proxy connects as usual, but may not name another client
    assert get("127.0.0.71", port)[1][0][0] == 200
    assert refused("127.0.0.72", port, build_v1("10.0.0.9", 1, VIP, port) + b"GET / HTTP/1.1\r\n\r\n")
    assert refused("127.0.0.73", port, build_v2("10.0.0.9", 1, VIP, port))
    assert _xff(servers) == [b"127.0.0.71"]  # nothing else reached a server
    text = metrics(lb)
    vip = f'{VIP}:{port}'
    for reason, n in (("malformed", 3), ("timeout", 1), ("untrusted", 2)):
        assert f'buddylb_proxy_refused_total{{context="Admin",reason="{reason}",vip="{vip}"}} {n}.0' in text, text
    assert "PROXY header" in lb.stderr()  # logged (rate-limited)


def test_probes_of_a_send_proxy_farm_send_the_header_unless_they_name_a_port(nginx, balancer) -> None:
    """As HAProxy's checks: no `port` -> the header (v1: the probe's own addresses; v2:
    LOCAL), so nginx's proxy_protocol listener answers the probe; a probe with its own
    `port` sends none, so nginx's plain listener answers it."""
    p = _ports() | {"nginx": nginx.port}
    probes = (f"probe http PP\n  interval 1\n  request method get url /pp\n"
              f"probe http PLAIN\n  interval 1\n  port {nginx.plain_port}\n  request method get url /plain\n")
    text = probes + nginx_config(p).replace("  send-proxy v1\n", "  send-proxy v1\n  probe PP\n  probe PLAIN\n")
    text = text.replace("  send-proxy v2\n", "  send-proxy v2\n  probe PP\n")
    lb = balancer(text)

    def passed() -> dict:
        return {(t["probe"], t["serverfarm"]): (t["last_result"], t["consecutive_failures"])
                for t in lb.api("/show/probe")["data"] if t["checks"] >= 2}

    want = {("PP", "pp1"): ("success", 0), ("PLAIN", "pp1"): ("success", 0), ("PP", "pp2"): ("success", 0)}
    assert wait_for(lambda: passed() == want, 15), passed()
    rows = nginx.logged()
    v1 = [r for r in rows if r[5].startswith('"GET /pp ') and r[0] == "127.0.0.1"]
    assert v1 and all(r[4] == "200" for r in v1)  # v1: the probe connection's own address
    local = [r for r in rows if r[5].startswith('"GET /pp ') and r[0] in ("-", "")]
    assert local and all(r[4] == "200" for r in local)  # v2 LOCAL: no client address
    assert all(r[4] == "200" for r in rows)  # nginx never refused a probe for a missing header
