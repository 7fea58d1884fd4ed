"""`loadbalance vip accept-proxy` on a VIP that terminates TLS (SPEC §2.1, issue 16 part 3).

The PROXY header comes in clear text before the ClientHello, as HAProxy's `bind ... ssl
accept-proxy` expects: HAProxy in TCP mode (`server ... send-proxy-v2`, TLS passed
through) in front of the buddylb TLS VIP, and Python clients that write the header and
then do TLS (HTTP/1.1 and HTTP/2 by ALPN).  The header's client keys stickiness, fills
X-Forwarded-For and the access log; a listed peer without a header, or too late, is
closed and counted; an unlisted peer goes straight to TLS.  Every process runs on free
ports and is stopped at teardown.
"""
from __future__ import annotations

import socket
import ssl
import time
from collections import Counter

import pytest

from buddylb.proxyproto import build_v1, build_v2
from tests.e2e.test_proxy_protocol import (FRONT, VIP, _xff, accept_config, assert_clients_pass_through, metrics,
                                           refused)
from tests.support.h2client import H2Client
from tests.support.net import connect_from, free_port, parse_response, read_all

TLS = "ssl-proxy service SHOP-TLS\n  cert shop.crt\n  key shop.key\n"


def _context(alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_get(raw: socket.socket, preamble: bytes = b"") -> tuple[int, dict, bytes]:
    """One HTTP/1.1 request over TLS on `raw`, after `preamble` in clear text."""
    raw.sendall(preamble)
    s = _context(["http/1.1"]).wrap_socket(raw, server_hostname="buddylb.test")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        return parse_response(read_all(s))
    finally:
        s.close()


def closed_before_tls(source: str, port: int, preamble: bytes, wait: float = 6.0) -> bool:
    """The VIP closes the connection: the handshake fails (no TLS served to it)."""
    raw = connect_from(source, VIP, port)
    raw.settimeout(wait)
    try:
        raw.sendall(preamble)
        _context().wrap_socket(raw, server_hostname="buddylb.test").close()
    except (ssl.SSLError, OSError):
        return True
    finally:
        raw.close()
    return False


@pytest.fixture
def tls_web(backends, balancer):
    p = {"vip": free_port(VIP), "lnx1": free_port("127.0.1.11"), "lnx2": free_port("127.0.1.12")}
    servers = [backends.http("lnx1", "127.0.1.11", p["lnx1"]), backends.http("lnx2", "127.0.1.12", p["lnx2"])]
    text = accept_config(p).replace("    loadbalance vip accept-proxy", "    ssl-proxy server SHOP-TLS\n"
                                    "    loadbalance vip accept-proxy")
    lb = balancer(text + TLS, certs=True)
    return lb, p, servers


def test_haproxy_in_front_of_a_tls_vip_passes_the_client_through(tls_web, tmp_path) -> None:
    def get(s: socket.socket) -> tuple[int, bytes]:  # a new TLS session each time
        status, _, body = tls_get(s)
        return status, body

    assert_clients_pass_through(tls_web, tmp_path, get)


def test_header_then_tls_http1_and_h2(tls_web) -> None:
    lb, p, servers = tls_web
    port = p["vip"]
    # v1 and v2, the header sent in pieces and the ClientHello right behind it in one write
    status, _, _ = tls_get(connect_from(FRONT, VIP, port), build_v1("10.9.8.7", 5555, VIP, port))
    assert status == 200
    raw = connect_from(FRONT, VIP, port)
    head = build_v2("2001:db8::7", 6666, VIP, port)
    for piece in (head[:5], head[5:17]):
        raw.sendall(piece)
        time.sleep(0.05)
    assert tls_get(raw, head[17:])[0] == 200
    # HTTP/2 still negotiated by ALPN behind the header
    c = H2Client(FRONT, VIP, port, preamble=build_v2("10.9.8.6", 4444, VIP, port))
    try:
        assert c.alpn == "h2"
        for _ in range(2):
            assert c.get("/")[0] == 200
    finally:
        c.close()
    # an unlisted peer goes straight to TLS, and is itself the client
    assert tls_get(connect_from("127.0.0.71", VIP, port))[0] == 200
    assert Counter(_xff(servers)) == {b"10.9.8.7": 1, b"2001:db8::7": 1, b"10.9.8.6": 2, b"127.0.0.71": 1}
    keys = {e["key"] for e in lb.api("/show/sticky-database")["data"]}
    assert keys == {"10.9.8.7", "2001:db8::7", "10.9.8.6", "127.0.0.71"}


def test_listed_peer_without_a_header_or_too_late_is_closed(tls_web) -> None:
    lb, p, servers = tls_web
    port = p["vip"]
    assert closed_before_tls(FRONT, port, b"")  # a ClientHello where the header belongs
    started = time.monotonic()
    assert refused(FRONT, port, b"PROXY TCP4 10.0.0.1")  # never completed: `timeout http-request 2`
    assert 1.5 < time.monotonic() - started < 4.5
    assert closed_before_tls("127.0.0.72", port, build_v2("10.0.0.9", 1, VIP, port))  # unlisted: TLS fails
    assert _xff(servers) == []  # nothing reached a server
    text = metrics(lb)
    vip = f'{VIP}:{port}'
    for reason, n in (("malformed", 1), ("timeout", 1)):
        assert f'buddylb_proxy_refused_total{{context="Admin",reason="{reason}",vip="{vip}"}} {n}.0' in text, text
    assert tls_get(connect_from(FRONT, VIP, port), build_v1("10.9.8.5", 1, VIP, port))[0] == 200  # still serving
