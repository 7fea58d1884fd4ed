"""The four seed scenarios through `buddylb run`, real sockets, many clients (SPEC §3)."""
from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.e2e.configs import farm, hosts, service, shopping_cart, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import connect_from, http_get, parse_response, read_all

CLIENTS = [f"127.0.0.{n}" for n in range(10, 22)]


def https_get(source: str, port: int, path: str = "/") -> tuple[int, dict, bytes]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = connect_from(source, VIP, port)
    with ctx.wrap_socket(raw, server_hostname="buddylb.test") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n".encode())
        return parse_response(read_all(s))


def test_one_to_one_http_then_terminated_https(ports, backends, balancer):
    text = shopping_cart(ports)
    bk = {n: backends.http(n, f"127.0.1.1{i}", ports[f"{n}_http"]) for i, n in ((1, "lnx1"), (2, "lnx2"))}
    dec = {n: backends.http(n, f"127.0.1.1{i}", ports[f"{n}_dec"]) for i, n in ((1, "lnx1"), (2, "lnx2"))}
    lb = balancer(text, certs=True)
    served = {}
    for c in CLIENTS:
        names = set()
        for _ in range(3):
            s1, _, b1 = http_get(c, VIP, ports["vip_http"])
            s2, h2, b2 = https_get(c, ports["vip_https"])
            assert (s1, s2) == (200, 200)
            names |= {b1, b2}
        assert len(names) == 1, (c, names)  # never a mix
        served[c] = names.pop()
    assert set(served.values()) == {b"lnx1", b"lnx2"}
    # PAT and forwarded headers: the decrypted farm got plain HTTP with X-Forwarded-Proto: https
    seen = [r for b in dec.values() for r in b.requests]
    assert seen and all(r[1].get(b"x-forwarded-proto") == b"https" for r in seen)
    assert all(r[1].get(b"x-forwarded-for", b"").startswith(b"127.0.0.") for r in seen)
    plain = [r for b in bk.values() for r in b.requests]
    assert all(r[1].get(b"x-forwarded-proto") == b"http" for r in plain)
    data = lb.api("/show/stats-sticky")["data"][0]
    assert data["buddy_hits"] >= len(CLIENTS) and data["entries"] == len(CLIENTS)


def test_asymmetric_with_url_classes_on_one_vip(ports, backends, balancer):
    text = hosts("lnx1", "lnx2")
    text += farm("foo", [("lnx1", ports["lnx1_foo"], "blue")])
    text += farm("bar", [("lnx2", ports["lnx2_bar"], "red")])
    text += farm("foobar", [("lnx1", ports["lnx1_fb"], "blue"), ("lnx2", ports["lnx2_fb"], "red")])
    for sg, f in (("s-foo", "foo"), ("s-bar", "bar"), ("s-foobar", "foobar")):
        text += sticky_ip(sg, f, "alpha")
    text += (
        "class-map type http loadbalance match-any cm-foo\n  2 match http url /foo.*\n"
        "class-map type http loadbalance match-any cm-bar\n  2 match http url /bar.*\n"
        "class-map match-all shop\n  2 match virtual-address 127.0.0.100 tcp eq {p}\n"
        "policy-map type loadbalance http first-match shop-lb\n"
        "  class cm-foo\n    sticky-serverfarm s-foo\n"
        "  class cm-bar\n    sticky-serverfarm s-bar\n"
        "  class class-default\n    sticky-serverfarm s-foobar\n"
        "policy-map multi-match int\n  class shop\n    loadbalance vip inservice\n    loadbalance policy shop-lb\n"
        "service-policy input int\n"
    ).format(p=ports["vip_shop"])
    backends.http("lnx1-foo", "127.0.1.11", ports["lnx1_foo"])
    backends.http("lnx2-bar", "127.0.1.12", ports["lnx2_bar"])
    backends.http("lnx1", "127.0.1.11", ports["lnx1_fb"])
    backends.http("lnx2", "127.0.1.12", ports["lnx2_fb"])
    balancer(text)
    for i, c in enumerate(CLIENTS):
        first = "/foo/cart" if i % 2 else "/bar/cart"
        status, _, body = http_get(c, VIP, ports["vip_shop"], first)
        assert status == 200 and body == (b"lnx1-foo" if i % 2 else b"lnx2-bar")
        for _ in range(3):
            _, _, body = http_get(c, VIP, ports["vip_shop"], "/checkout")
            assert body == (b"lnx1" if i % 2 else b"lnx2"), (c, body)


def test_many_to_one_tiers_l7_web_l4_app(ports, backends, balancer):
    text = hosts("lnx1", "lnx2", "lnx3", "lnx4", "db1", "db2")
    text += farm("web", [(n, ports[f"{n}_web"], g) for n, g in
                         (("lnx1", "blue"), ("lnx2", "blue"), ("lnx3", "red"), ("lnx4", "red"))])
    text += farm("app", [("db1", ports["db1"], "blue"), ("db2", ports["db2"], "red")])
    text += sticky_ip("s-web", "web", "tiers") + sticky_ip("s-app", "app", "tiers")
    text += service(vip_policy("v-web", ports["vip_web"], "s-web", http=True),
                    vip_policy("v-app", ports["vip_app"], "s-app"))
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12"), ("lnx3", "127.0.1.13"), ("lnx4", "127.0.1.14")):
        backends.http(n, h, ports[f"{n}_web"])
    backends.tcp("db1", "127.0.1.21", ports["db1"])
    backends.tcp("db2", "127.0.1.22", ports["db2"])
    balancer(text)
    seen = set()
    for c in CLIENTS:
        _, _, web = http_get(c, VIP, ports["vip_web"])
        seen.add(web)
        for _ in range(2):
            s = connect_from(c, VIP, ports["vip_app"])
            try:
                db = s.makefile("rb").readline().strip()
            finally:
                s.close()
            assert db == (b"db1" if web in (b"lnx1", b"lnx2") else b"db2"), (c, web, db)
            _, _, back = http_get(c, VIP, ports["vip_web"])
            assert back == web  # back on the web tier: the web server it had
    assert seen == {b"lnx1", b"lnx2", b"lnx3", b"lnx4"}


def test_netmask_and_timeout_merge(ports, backends, balancer):
    text = hosts("lnx1", "lnx2")
    text += farm("f1", [("lnx1", ports["l1a"], "blue"), ("lnx2", ports["l2a"], "red")])
    text += farm("f2", [("lnx1", ports["l1b"], "blue"), ("lnx2", ports["l2b"], "red")])
    text += sticky_ip("SG1", "f1", "merged", mask="255.255.255.255", timeout="4s")
    text += sticky_ip("SG2", "f2", "merged", mask="255.255.255.0", timeout="2s")
    text += service(vip_policy("v1", ports["vip1"], "SG1", http=True), vip_policy("v2", ports["vip2"], "SG2", http=True))
    for k, n, h in (("l1a", "lnx1", "127.0.1.11"), ("l2a", "lnx2", "127.0.1.12"),
                    ("l1b", "lnx1", "127.0.1.11"), ("l2b", "lnx2", "127.0.1.12")):
        backends.http(n, h, ports[k])
    lb = balancer(text)
    merged = lb.api("/show/buddy-group/merged")["data"]["buddy_sticky_groups"][0]
    assert merged["effective_mask"] == "255.255.255.255" and merged["effective_timeout_s"] == 2.0
    a, b = "127.0.0.30", "127.0.0.31"  # same /24, keyed separately (/32 wins)
    ba = http_get(a, VIP, ports["vip1"])[2]
    bb = http_get(b, VIP, ports["vip1"])[2]
    assert ba != bb
    assert http_get(a, VIP, ports["vip2"])[2] == ba and http_get(b, VIP, ports["vip2"])[2] == bb
    keys = {r["key"] for r in lb.api("/show/sticky-database")["data"]}
    assert keys == {a, b}
    time.sleep(2.4)  # the shortest member timeout (2 s) applies to the whole group
    assert lb.api("/show/sticky-database")["data"] == []
