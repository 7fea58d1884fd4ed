"""SPEC §5 timeouts end to end, with one-second timeouts so each case takes seconds.

Every slow or silent client is cut off at its timeout while a well-behaved client
(`Steady`, fresh connection per request) runs alongside and must see no error.
"""
from __future__ import annotations

import socket
import ssl
import time
import urllib.request

import pytest

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.e2e.conftest import VIP
from tests.support.faulty import Steady, blackhole
from tests.support.net import connect_from, wait_for

TIMEOUTS = ("timeout http-request 1\ntimeout keep-alive 1\ntimeout client 1\ntimeout server 1\n"
            "timeout connect 1\ntimeout tls-handshake 1\n")


def l7_config(ports, members: list[tuple[str, int]], timeouts: str = TIMEOUTS, l4: bool = False,
              tls: bool = False, farm_extra: str = "", host_extra: dict | None = None) -> str:
    """One VIP on one farm `web` of `members` (name, port), not sticky: L7 (L4 with `l4`,
    TLS-terminated with `tls`), after the global lines in `timeouts`."""
    text = timeouts + hosts(*[n for n, _ in members], extra=host_extra)
    text += farm("web", [(n, p, None) for n, p in members], extra=farm_extra)
    text += service(vip_policy("v", ports["vip"], "web", http=not l4, sticky=False,
                               ssl_proxy="SHOP-TLS" if tls else None))
    if tls:
        text += "ssl-proxy service SHOP-TLS\n  cert shop.crt\n  key shop.key\n"
    return text


def read_until_close(s: socket.socket, limit_s: float) -> tuple[bytes, str, float]:
    """Read until EOF, reset or `limit_s`; returns (bytes, "eof"|"reset"|"timeout", seconds)."""
    start = time.monotonic()
    data = b""
    while True:
        left = limit_s - (time.monotonic() - start)
        if left <= 0:
            return data, "timeout", time.monotonic() - start
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, "reset", time.monotonic() - start
        if not chunk:
            return data, "eof", time.monotonic() - start
        data += chunk


def read_response(s: socket.socket, limit_s: float = 5.0) -> bytes:
    """One Content-Length response from a keep-alive connection."""
    s.settimeout(limit_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def web(ports, faulty):
    return faulty.start("lnx1", "127.0.1.11", ports["a"])


def test_slowloris_and_silent_client_get_408_then_close(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    with Steady("127.0.0.20", VIP, ports["vip"]) as steady:
        silent = connect_from("127.0.0.21", VIP, ports["vip"])
        s = connect_from("127.0.0.22", VIP, ports["vip"])
        try:
            start = time.monotonic()
            got = b""
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                s.settimeout(0.3)
                try:
                    got += s.recv(4096)
                except socket.timeout:
                    continue
                if got:
                    break
            waited = time.monotonic() - start
            rest, how, _ = read_until_close(s, 3)
            assert (got + rest).startswith(b"HTTP/1.1 408 "), got + rest
            assert 0.9 <= waited <= 2.5, waited
            assert how == "eof"  # lingering close: the client reads the 408, then a FIN
            data, how, took = read_until_close(silent, 4)
            assert data.startswith(b"HTTP/1.1 408 ") and how == "eof"
        finally:
            s.close()
            silent.close()
    assert steady.failures == [] and steady.ok > 10
    assert all(r.headers.get(b"x-slow") is None for r in web.requests)  # nothing half-sent went through


def test_idle_keep_alive_connection_closed_silently(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    s = connect_from("127.0.0.23", VIP, ports["vip"])
    try:
        for _ in range(3):  # activity keeps it open: each request restarts the idle clock
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s).endswith(b"lnx1")
            time.sleep(0.5)
        data, how, took = read_until_close(s, 4)
        assert data == b"" and how == "eof"  # no 408: between requests it is a silent close
        assert 0.2 <= took <= 2.0, took  # 1 s after the last response (0.5 s already waited)
    finally:
        s.close()


def test_partial_next_request_after_a_response_gets_408(ports, web, balancer):
    """Bytes of the next request arrived with the first: after the response it is a
    request in progress (`timeout http-request`, 408), not an idle keep-alive."""
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    s = connect_from("127.0.0.23", VIP, ports["vip"])
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HT")
        assert read_response(s).endswith(b"lnx1")
        data, how, took = read_until_close(s, 4)
        assert data.startswith(b"HTTP/1.1 408 ") and how == "eof", data
        assert 0.8 <= took <= 2.0, took
    finally:
        s.close()
    assert web.first(b"GET /second") is None


def test_slow_post_body_is_cut_off_and_never_completes(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    with Steady("127.0.0.20", VIP, ports["vip"]) as steady:
        s = connect_from("127.0.0.24", VIP, ports["vip"])
        try:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            start = time.monotonic()
            cut = False
            for _ in range(8):  # one byte every 1.5 s: slower than `timeout client 1`
                time.sleep(1.5)
                try:
                    s.sendall(b"c")
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
                s.settimeout(0.01)
                try:
                    if s.recv(4096, socket.MSG_PEEK):
                        cut = True
                        break
                except (socket.timeout, BlockingIOError):
                    pass
                except ConnectionResetError:
                    cut = True
                    break
            data, how, _ = read_until_close(s, 3)
            assert cut and time.monotonic() - start < 5
            assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
        finally:
            s.close()
    assert steady.failures == [] and steady.ok > 10
    assert not any(r.line.startswith(b"POST") for r in web.requests)  # never a complete body


def test_slow_reader_is_cut_off_and_does_not_block_others(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    size = 32 * 1024 * 1024
    with Steady("127.0.0.20", VIP, ports["vip"]) as steady:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind(("127.0.0.25", 0))
            s.connect((VIP, ports["vip"]))
            s.sendall(f"GET /big/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sent_at = time.monotonic()
            assert wait_for(lambda: (r := web.first(b"GET /big")) is not None and r.conn in web.closed, 6)
            cut_after = web.closed[web.first(b"GET /big").conn] - sent_at
            data, how, _ = read_until_close(s, 5)
            assert how in ("eof", "reset") and len(data) < size
            assert 0.9 <= cut_after <= 4.0, cut_after  # stalled buffers, then `timeout client`
        finally:
            s.close()
    assert steady.failures == [] and steady.ok > 10


def test_tls_handshake_timeout_closes_silent_client(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])], tls=True), certs=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def tls_get(source: str) -> bytes:
        raw = connect_from(source, VIP, ports["vip"])
        with ctx.wrap_socket(raw, server_hostname="buddylb.test") as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return read_until_close(t, 5)[0]

    start = time.monotonic()
    s = connect_from("127.0.0.26", VIP, ports["vip"])
    try:
        # real TLS clients are served while the silent one waits for its handshake
        for n in range(3):
            data = tls_get(f"127.0.0.{40 + n}")
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"lnx1")
        data, how, _ = read_until_close(s, 5)
        took = time.monotonic() - start
        assert data == b"" and how in ("eof", "reset")
        assert 0.9 <= took <= 2.5, took
    finally:
        s.close()


def test_server_that_never_answers_gives_504(ports, web, balancer):
    balancer(l7_config(ports, [("lnx1", ports["a"])]))
    with Steady("127.0.0.20", VIP, ports["vip"]) as steady:
        s = connect_from("127.0.0.28", VIP, ports["vip"])
        try:
            s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            data, how, took = read_until_close(s, 5)
        finally:
            s.close()
    assert data.startswith(b"HTTP/1.1 504 ") and how == "eof"
    assert 0.9 <= took <= 2.5, took
    assert steady.failures == [] and steady.ok > 10


def test_connect_timeout_on_blackholed_server(ports, web, balancer):
    """A SYN that is never answered: one retry elsewhere, or 502 after `timeout connect`."""
    with blackhole("127.0.1.12") as dead:
        timeouts = TIMEOUTS.replace("timeout server 1", "timeout server 10")
        lb_alone = balancer(l7_config(ports, [("lnx2", dead)], timeouts=timeouts))
        start = time.monotonic()
        s = connect_from("127.0.0.29", VIP, ports["vip"])
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data, how, _ = read_until_close(s, 6)
        finally:
            s.close()
        took = time.monotonic() - start
        assert data.startswith(b"HTTP/1.1 502 "), data
        assert 0.9 <= took <= 2.5, took
        lb_alone.stop()
        ports.pop("vip")
        balancer(l7_config(ports, [("lnx1", ports["a"]), ("lnx2", dead)], timeouts=timeouts))
        with Steady("127.0.0.20", VIP, ports["vip"], max_requests=6, pause_s=0) as steady:
            steady.thread.join(20)
    assert steady.failures == [] and steady.ok == 6  # each blackholed pick retried on lnx1


def test_l4_idle_connection_closed_after_inactivity(ports, faulty, balancer):
    from tests.support.backends import Backends

    with Backends() as bk:
        bk.tcp("lnx1", "127.0.1.11", ports["a"])
        balancer(l7_config(ports, [("lnx1", ports["a"])], l4=True))
        s = connect_from("127.0.0.30", VIP, ports["vip"])
        try:
            assert s.recv(100) == b"lnx1\n"
            for _ in range(3):  # traffic keeps it alive
                time.sleep(0.6)
                s.sendall(b"ping")
                assert s.recv(100) == b"ping"
            data, how, took = read_until_close(s, 5)
            assert data == b"" and how in ("eof", "reset")
            assert 0.9 <= took <= 2.5, took
        finally:
            s.close()


def test_l4_silent_client_waiting_for_client_hello_is_closed(ports, faulty, balancer):
    """An ssl-session VIP holds the decision until the ClientHello: a client that never
    sends one is closed after `timeout client`, not held forever."""
    from tests.support.backends import Backends

    text = l7_config(ports, [("lnx1", ports["a"])], l4=True).replace(
        "class-map", "sticky ssl-session tls-sticky\n  timeout 10\n  serverfarm web\nclass-map", 1)
    text = text.replace("    serverfarm web\n", "    sticky-serverfarm tls-sticky\n")
    with Backends() as bk:
        bk.tcp("lnx1", "127.0.1.11", ports["a"])
        balancer(text)
        s = connect_from("127.0.0.31", VIP, ports["vip"])
        try:
            data, how, took = read_until_close(s, 5)
            assert data == b"" and how in ("eof", "reset")
            assert 0.9 <= took <= 2.5, took
        finally:
            s.close()


def test_server_connection_released_by_a_slow_reader_is_readable_again(ports, web, balancer):
    """The response ends while the client's buffer is full (server reading paused): the
    pooled server connection must not stay paused for the next request that takes it.
    Sizes step across the kernel's loopback buffering (~2.8 MB with a 4 KiB receive
    buffer) so that one of them ends in the very read that fills buddylb's buffer."""
    balancer(l7_config(ports, [("lnx1", ports["a"])], timeouts=TIMEOUTS.replace("client 1", "client 5")
                       .replace("server 1", "server 2")))
    slow = []
    for size in range(2_600_000, 3_500_000, 100_000):
        a = socket.socket()
        try:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            a.bind(("127.0.0.32", 0))
            a.connect((VIP, ports["vip"]))
            a.sendall(f"GET /big/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            time.sleep(0.3)  # not reading: buddylb's buffer fills
            assert len(read_response(a)) > size
        finally:
            a.close()
        start = time.monotonic()
        b = connect_from("127.0.0.33", VIP, ports["vip"])
        try:
            b.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # takes the pooled connection
            data = read_response(b, 4)
            assert data.endswith(b"lnx1"), data
        except (socket.timeout, AssertionError) as exc:
            slow.append((size, repr(exc)[:80]))
        finally:
            b.close()
        if time.monotonic() - start > 1.0:
            slow.append((size, time.monotonic() - start))
    assert slow == []


def test_a_408_flood_is_summarised_not_logged_per_client(ports, web, balancer):
    """Issue 13 item 7: 15,000 timed-out clients wrote 15,000 INFO lines. Now the first is
    logged, the rest are counted (one summary per window) and exported as a metric."""
    lb = balancer(l7_config(ports, [("lnx1", ports["a"])]))
    flood = [connect_from(f"127.0.5.{1 + i}", VIP, ports["vip"]) for i in range(60)]
    try:
        for s in flood:
            s.sendall(b"GET / HTTP/1.1\r\n")  # a head that never ends
        for s in flood:
            data, _, _ = read_until_close(s, 4)
            assert data.startswith(b"HTTP/1.1 408 ")
    finally:
        for s in flood:
            s.close()
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'buddylb_log_events_total{cause="http_408"} 60.0' in metrics
    lines = [ln for ln in lb.stderr().splitlines() if "408" in ln]
    assert 1 <= len(lines) <= 2, lines  # the first one, and (after 10 s) at most one summary
