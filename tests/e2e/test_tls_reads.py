"""HTTP/1.1 on a TLS-terminated VIP reads through one shared buffer (io.l7.protocol.TlsClient).

The buffer is 64 KiB and shared by every TLS client: a body larger than it arrives in
several fills, and two clients sending at once must never see each other's bytes."""
from __future__ import annotations

import os
import ssl

from tests.e2e.configs import shopping_cart
from tests.e2e.conftest import VIP
from tests.support.net import connect_from

BODY = 300_000  # over four fills of the 64 KiB read buffer


def _tls(source: str, port: int, alpn: list[str] | None) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(connect_from(source, VIP, port, timeout=10.0), server_hostname="buddylb.test")


def _response(s: ssl.SSLSocket, buf: bytearray) -> tuple[int, bytes]:
    """One Content-Length response off a keep-alive connection; leaves what follows in `buf`."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed before a response head"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
    n = int(fields[b"content-length"])
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside a response body"
        rest += chunk
    buf[:] = rest[n:]
    return int(lines[0].split()[1]), rest[:n]


def test_big_bodies_from_two_tls_clients_arrive_whole_then_keep_alive(ports, backends, balancer):
    dec = [backends.http(n, f"127.0.1.1{i}", ports[f"{n}_dec"]) for i, n in ((1, "lnx1"), (2, "lnx2"))]
    balancer(shopping_cart(ports), certs=True)
    bodies = [os.urandom(BODY), os.urandom(BODY)]
    clients = [_tls("127.0.0.31", ports["vip_https"], None), _tls("127.0.0.32", ports["vip_https"], ["http/1.1"])]
    try:
        assert clients[1].selected_alpn_protocol() == "http/1.1"
        for s, body in zip(clients, bodies):  # both heads first: the two uploads interleave below
            s.sendall(b"POST /up HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n" % len(body))
        view = [memoryview(b) for b in bodies]
        for off in range(0, BODY, 16384):
            for s, v in zip(clients, view):
                s.sendall(v[off:off + 16384])
        bufs = [bytearray(), bytearray()]
        for s, buf in zip(clients, bufs):
            assert _response(s, buf)[0] == 200
        for s, buf in zip(clients, bufs):  # the same connections serve the next request
            s.sendall(b"GET /after HTTP/1.1\r\nHost: shop\r\n\r\n")
            assert _response(s, buf)[0] == 200
    finally:
        for s in clients:
            s.close()
    posts = [r[2] for b in dec for r in b.requests if r[0].startswith(b"POST")]
    assert sorted(posts) == sorted(bodies)  # each body whole and in order, never mixed with the other's
    gets = [r for b in dec for r in b.requests if r[0].startswith(b"GET /after")]
    assert len(gets) == 2 and all(r[1].get(b"x-forwarded-proto") == b"https" for r in gets)
