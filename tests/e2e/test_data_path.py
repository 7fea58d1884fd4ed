"""Data-path features end to end: PAT, weights, leastconns, probes, failures, cookies,
ssl-session stickiness, reload under traffic."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter

from tests.e2e.configs import farm, hosts, service, shopping_cart, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.support.certs import make_cert
from tests.support.net import connect_from, free_port, http_get, wait_for


def _two(backends, ports, a="a", b="b", kind="http"):
    start = backends.http if kind == "http" else backends.tcp
    return start("lnx1", "127.0.1.11", ports[a]), start("lnx2", "127.0.1.12", ports[b])


def test_pat_and_weights(ports, backends, balancer):
    text = hosts("lnx1", "lnx2", extra={"lnx1": "weight 3", "lnx2": "weight 1"})
    text += farm("web", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)])
    text += service(vip_policy("v", ports["vip"], "web", http=True, sticky=False))
    _two(backends, ports)
    balancer(text)
    got = Counter(http_get("127.0.0.10", VIP, ports["vip"])[2] for _ in range(40))
    assert got == {b"lnx1": 30, b"lnx2": 10}


def test_leastconns_with_long_lived_connections(ports, backends, balancer):
    text = hosts("lnx1", "lnx2")
    text += farm("app", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)], predictor="leastconns")
    text += service(vip_policy("v", ports["vip"], "app", sticky=False))
    _two(backends, ports, kind="tcp")
    balancer(text)
    held = []
    try:
        first = connect_from("127.0.0.10", VIP, ports["vip"])
        held.append(first)
        name = first.makefile("rb").readline().strip()
        # while `first` stays open, the next three go to the other server only until it has as many
        names = []
        for n in range(3):
            s = connect_from(f"127.0.0.{11 + n}", VIP, ports["vip"])
            held.append(s)
            names.append(s.makefile("rb").readline().strip())
        other = b"lnx2" if name == b"lnx1" else b"lnx1"
        assert names[0] == other
        assert Counter([name] + names) == {b"lnx1": 2, b"lnx2": 2}
    finally:
        for s in held:
            s.close()


PROBE = "probe tcp TCP-CHECK\n  interval 1\n  faildetect 1\n  passdetect interval 1\n  passdetect count 1\n  open 1\n"


def test_probe_failure_resticks_and_buddy_follows_then_recovery(ports, backends, balancer):
    text = PROBE + shopping_cart(ports, tls=False).replace(
        "serverfarm host http\n  predictor roundrobin\n", "serverfarm host http\n  predictor roundrobin\n  probe TCP-CHECK\n")
    web = {n: backends.http(n, h, ports[f"{n}_http"]) for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12"))}
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(text)
    c = "127.0.0.40"
    first = http_get(c, VIP, ports["vip_http"])[2].decode()
    assert http_get(c, VIP, ports["vip_https"])[2].decode() == first
    other = "lnx2" if first == "lnx1" else "lnx1"
    backends.stop(web[first])
    assert wait_for(lambda: any(p["rserver"] == first and p["state"] == "DOWN"
                                for p in lb.api("/show/probe")["data"]), 10)
    assert http_get(c, VIP, ports["vip_http"])[2].decode() == other  # re-stick
    assert http_get(c, VIP, ports["vip_https"])[2].decode() == other  # the buddy follows
    backends.restart(web[first])
    assert wait_for(lambda: all(p["state"] == "UP" for p in lb.api("/show/probe")["data"]), 10)
    assert http_get(c, VIP, ports["vip_http"])[2].decode() == other  # entry unchanged after recovery


def test_no_server_gives_503_on_l7_and_close_on_l4(ports, backends, balancer):
    text = hosts("lnx1") .replace("  inservice\n", "")  # out of service host
    text += farm("web", [("lnx1", ports["a"], None)])
    text += service(vip_policy("v7", ports["vip7"], "web", http=True, sticky=False),
                    vip_policy("v4", ports["vip4"], "web", sticky=False))
    backends.http("lnx1", "127.0.1.11", ports["a"])
    balancer(text)
    status, _, _ = http_get("127.0.0.10", VIP, ports["vip7"])
    assert status == 503
    s = connect_from("127.0.0.10", VIP, ports["vip4"])
    try:
        assert s.recv(100) == b""
    finally:
        s.close()


def test_backend_refusing_is_retried_elsewhere(ports, backends, balancer):
    dead = free_port("127.0.1.11")  # nothing listens there
    text = hosts("lnx1", "lnx2")
    text += farm("web", [("lnx1", dead, None), ("lnx2", ports["b"], None)])
    text += service(vip_policy("v7", ports["vip7"], "web", http=True, sticky=False),
                    vip_policy("v4", ports["vip4"], "web", sticky=False))
    backends.http("lnx2", "127.0.1.12", ports["b"])
    balancer(text)
    for _ in range(6):
        assert http_get("127.0.0.10", VIP, ports["vip7"])[:3:2] == (200, b"lnx2")
        s = connect_from("127.0.0.10", VIP, ports["vip4"])
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.makefile("rb").readline().startswith(b"HTTP/1.1 200")
        finally:
            s.close()


COOKIE = """sticky http-cookie SRV cookie-sticky
  cookie insert
  timeout 10
  serverfarm web
"""


def test_cookie_insert_round_trip_and_tampered_token_ignored(ports, backends, balancer):
    text = hosts("lnx1", "lnx2") + farm("web", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)])
    text += COOKIE + service(vip_policy("v", ports["vip"], "cookie-sticky", http=True))
    _two(backends, ports)
    balancer(text)
    status, headers, body = http_get("127.0.0.10", VIP, ports["vip"])
    cookie = headers["set-cookie-list"][0].split(";")[0]
    name, token = cookie.split("=", 1)
    assert name == "SRV" and "127.0" not in token and str(ports["a"]) not in token
    # the same cookie from other client addresses keeps the server
    for n in range(20, 30):
        st, h, b = http_get(f"127.0.0.{n}", VIP, ports["vip"], headers={"Cookie": cookie})
        assert b == body and not h["set-cookie-list"]
    # tampered tokens are never honoured: balanced, and a fresh cookie is set
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    bodies = Counter()
    for _ in range(10):
        st, h, b = http_get("127.0.0.11", VIP, ports["vip"], headers={"Cookie": f"SRV={flipped}"})
        assert st == 200 and h["set-cookie-list"] and h["set-cookie-list"][0].split(";")[0] != f"SRV={flipped}"
        bodies[b] += 1
    assert set(bodies) == {b"lnx1", b"lnx2"}  # round robin: the token steered nothing


SSL_SESSION = """sticky ssl-session tls-sticky
  timeout 10
  serverfarm tls
"""


def test_ssl_session_stickiness_on_passthrough_vip(tmp_path, ports, backends, balancer):
    crt, key = make_cert(tmp_path, "backend")
    text = hosts("lnx1", "lnx2") + farm("tls", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)])
    text += SSL_SESSION + service(vip_policy("v", ports["vip"], "tls-sticky"))
    backends.https("lnx1", "127.0.1.11", ports["a"], str(crt), str(key))
    backends.https("lnx2", "127.0.1.12", ports["b"], str(crt), str(key))
    lb = balancer(text)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def get(source, session=None):
        raw = connect_from(source, VIP, ports["vip"])
        with ctx.wrap_socket(raw, server_hostname="buddylb.test", session=session) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.rsplit(b"\r\n\r\n", 1)[1], s.session, s.session_reused

    for n in range(4):
        body, session, _ = get(f"127.0.0.{50 + n}")
        for _ in range(3):
            again, _, reused = get(f"127.0.0.{50 + n}", session)
            assert reused and again == body  # resumed on the server that issued the session
    assert lb.api("/show/stats-sticky")["data"][0]["entries"] == 4


def test_reload_under_traffic_keeps_entries_and_bad_reload_keeps_serving(ports, backends, balancer):
    text = shopping_cart(ports, tls=False)
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(text)
    failures: list = []
    stop = threading.Event()
    first: dict[str, bytes] = {}

    def client(n: int) -> None:
        src = f"127.0.0.{100 + n}"
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                st, _, body = http_get(src, VIP, ports["vip_http"] if n % 2 else ports["vip_https"])
            except OSError as exc:
                failures.append((src, repr(exc)))
                continue
            if st != 200:
                failures.append((src, st))
            elif first.setdefault(src, body) != body:
                failures.append((src, "moved", first[src], body))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for i in range(5):
            lb.reload(text + f"! reload {i}\n")
            time.sleep(0.3)
        lb.reload(text + "serverfarm host broken\n  rserver nobody 80\n")  # invalid: refused
        time.sleep(0.5)
        info = lb.api("/info")["data"]
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert info["reloads"] == 5
    assert "reload refused" in lb.stderr()
    assert lb.api("/show/stats-sticky")["data"][0]["entries"] == 20
