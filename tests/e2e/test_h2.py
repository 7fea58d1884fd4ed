"""HTTP/2 on a TLS VIP end to end (issue 16 part 2): ALPN, streams decided and stuck like
HTTP/1.1 requests, curl --http2 and h2load, flow control, GOAWAY on reload and stop."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from tests.e2e.configs import farm, hosts, service, shopping_cart, vip_policy
from tests.e2e.conftest import VIP
from tests.support.h2client import H2Client
from tests.e2e.test_proxy_protocol import nginx, nginx_config  # noqa: F401 (nginx: the fixture)
from tests.support.net import free_port, http_get, wait_for

pytestmark = pytest.mark.e2e


def _shop(ports, backends, balancer):
    """The SPEC §2 shopping cart: an HTTP VIP and a TLS one, buddied (group alpha)."""
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
    web = {n: backends.http(n, h, ports[f"{n}_dec"]) for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12"))}
    return balancer(shopping_cart(ports), "--access-log-format", "json", certs=True), web


def _log(lb) -> list[dict]:
    return [json.loads(line) for line in lb.log.read_text().splitlines() if line.strip()] if lb.log.exists() else []


def test_alpn_h2_streams_stuck_and_buddied_like_http1(ports, backends, balancer):
    lb, web = _shop(ports, backends, balancer)
    seen = set()
    for n in range(41, 49):
        src = f"127.0.0.{n}"
        c = H2Client(src, VIP, ports["vip_https"])
        try:
            assert c.alpn == "h2"
            status, fields, body = c.get("/")
            assert status == 200 and fields[b"x-server"] == body
            # more streams on the same connection, and in parallel: the same server (stuck)
            sids = [c.request(f"/p{i}") for i in range(5)]
            assert {c.response(s)[2] for s in sids} == {body}
        finally:
            c.close()
        # the buddy: the same client's HTTP/1.1 request on the HTTP VIP goes to that server
        assert http_get(src, VIP, ports["vip_http"])[2] == body
        seen.add(body)
    assert seen == {b"lnx1", b"lnx2"}  # balanced across clients
    # what the server got: a clean HTTP/1.1 request with X-Forwarded-For / -Proto
    line, hdrs, _ = web["lnx1"].requests[0] if web["lnx1"].requests else web["lnx2"].requests[0]
    assert line.endswith(b" HTTP/1.1") and hdrs[b"x-forwarded-proto"] == b"https"
    assert hdrs[b"x-forwarded-for"].startswith(b"127.0.0.4") and hdrs[b"host"] == f"{VIP}:{ports['vip_https']}".encode()
    assert wait_for(lambda: sum(r.get("mode") == "h2" for r in _log(lb)) >= 8 * 6, 5)
    rec = next(r for r in _log(lb) if r.get("mode") == "h2")
    assert rec["status"] == 200 and rec["request"].startswith("GET /") and rec["rserver"]


def test_post_bodies_with_and_without_length_and_a_big_response(ports, backends, balancer):
    lb, web = _shop(ports, backends, balancer)
    c = H2Client("127.0.0.50", VIP, ports["vip_https"])
    try:
        sid = c.request("/up", "POST", headers=[("content-length", "11")], body=b"hello world")
        status, _, server = c.response(sid)
        assert status == 200
        got = web[server.decode()].requests[-1]
        assert got[0] == b"POST /up HTTP/1.1" and got[2] == b"hello world" and got[1][b"content-length"] == b"11"
        sid = c.request("/chunks", "POST", body=b"x" * 100_000)  # no content-length: sent chunked
        assert c.response(sid, 10)[0] == 200
        got = web[server.decode()].requests[-1]
        assert got[1][b"transfer-encoding"] == b"chunked" and len(got[2]) > 100_000
        # a response larger than every window: flow control both ways, nothing lost
        status, fields, body = c.response(c.request("/big/3000000"), 20)
        assert status == 200 and len(body) == 3_000_000 and fields[b"content-length"] == b"3000000"
    finally:
        c.close()


def test_curl_http2(ports, backends, balancer):
    lb, _ = _shop(ports, backends, balancer)
    first = http_get("127.0.0.51", VIP, ports["vip_http"])[2].decode()
    out = subprocess.run(
        ["curl", "--http2", "-sk", "--interface", "127.0.0.51", "-w", "\n%{http_version} %{http_code}",
         "-H", "Cookie: a=1", "-H", "Cookie: b=2", f"https://{VIP}:{ports['vip_https']}/x?y=1"],
        capture_output=True, timeout=20, text=True)
    body, _, tail = out.stdout.rpartition("\n")
    assert tail == "2 200" and body == first  # HTTP/2, and buddied with the HTTP/1.1 request


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is installed by .ci/run")
def test_h2load_many_streams(ports, backends, balancer):
    lb, _ = _shop(ports, backends, balancer)
    out = subprocess.run(["h2load", "-n", "600", "-c", "4", "-m", "20", f"https://{VIP}:{ports['vip_https']}/"],
                         capture_output=True, timeout=60, text=True).stdout
    assert "Application protocol: h2" in out and "600 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 600 2xx" in out, out


def test_cookie_insert_over_h2(ports, backends, balancer):
    backends.http("lnx1", "127.0.1.11", ports["a"])
    backends.http("lnx2", "127.0.1.12", ports["b"])
    text = hosts("lnx1", "lnx2") + farm("web", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)])
    text += "sticky http-cookie SRV cookie-sticky\n  cookie insert\n  timeout 10\n  serverfarm web\n"
    text += service(vip_policy("v", ports["vip"], "cookie-sticky", http=True, ssl_proxy="SHOP-TLS"))
    text += "ssl-proxy service SHOP-TLS\n  cert shop.crt\n  key shop.key\n"
    balancer(text, certs=True)
    c = H2Client("127.0.0.52", VIP, ports["vip"])
    try:
        status, fields, body = c.get("/")
        cookie = fields[b"set-cookie"].split(b";")[0]
        assert cookie.startswith(b"SRV=") and b"Secure" in fields[b"set-cookie"]
    finally:
        c.close()
    for n in range(53, 58):  # other clients with the cookie: the same server, no new cookie
        c = H2Client(f"127.0.0.{n}", VIP, ports["vip"])
        try:
            status, fields, got = c.get("/", headers=[("cookie", cookie)])
            assert got == body and b"set-cookie" not in fields
        finally:
            c.close()


def test_goaway_on_reload_lets_open_streams_finish(ports, backends, balancer):
    lb, _ = _shop(ports, backends, balancer)
    c = H2Client("127.0.0.58", VIP, ports["vip_https"])
    try:
        assert c.get("/")[0] == 200
        lb.reload()
        deadline = time.monotonic() + 10
        while c.goaway is None and time.monotonic() < deadline and c.pump(0.2):
            pass
        assert c.goaway is not None and c.goaway.error_code == 0
        assert c.wait_closed(5)  # no stream open: closed after the GOAWAY
    finally:
        c.close()
    c = H2Client("127.0.0.58", VIP, ports["vip_https"])  # a new connection is served
    try:
        assert c.get("/")[0] == 200
    finally:
        c.close()


def test_h2_streams_to_a_send_proxy_farm_name_the_client(nginx, balancer):
    """Each stream's server connection opens with the h2 client's address (PROXY v2)."""
    p = {"vip1": free_port(VIP), "vip2": free_port(VIP), "nginx": nginx.port}
    text = nginx_config(p, l7=True).replace("    loadbalance policy lb2\n",
                                            "    loadbalance policy lb2\n    ssl-proxy server SHOP-TLS\n")
    balancer(text + "ssl-proxy service SHOP-TLS\n  cert shop.crt\n  key shop.key\n", certs=True)
    c = H2Client("127.0.0.61", VIP, p["vip2"])
    try:
        sport = c.sock.getsockname()[1]
        for _ in range(3):
            status, _, body = c.get("/")
            assert status == 200 and body == f"127.0.0.61 {sport}\n".encode(), body
    finally:
        c.close()


def test_stop_sends_goaway_and_the_open_stream_finishes(ports, backends, balancer):
    from hyperframe.frame import DataFrame, Frame

    lb, web = _shop(ports, backends, balancer)
    c = H2Client("127.0.0.59", VIP, ports["vip_https"])
    try:
        sid = c.request("/upload", "POST", headers=[("content-length", "5")], end=False)  # the body is still due
        time.sleep(0.3)
        lb.proc.send_signal(15)  # SIGTERM: drain
        deadline = time.monotonic() + 10
        while c.goaway is None and time.monotonic() < deadline and c.pump(0.2):
            pass
        assert c.goaway is not None and c.goaway.error_code == 0 and c.goaway.last_stream_id == sid
        # the h2 library as a client stops at a GOAWAY: read raw from here (real clients finish their streams)
        end = DataFrame(sid, data=b"hello")
        end.flags.add("END_STREAM")
        c.send_raw(end.serialize())
        raw = b""
        c.sock.settimeout(5)
        while True:
            try:
                chunk = c.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            raw += chunk
        frames = []
        while len(raw) >= 9:
            f, length = Frame.parse_frame_header(memoryview(raw[:9]))
            f.parse_body(memoryview(raw[9:9 + length]))
            frames.append(f)
            raw = raw[9 + length:]
        kinds = [(type(f).__name__, f.stream_id) for f in frames if f.stream_id == sid]
        assert ("HeadersFrame", sid) in kinds and any("END_STREAM" in f.flags for f in frames if f.stream_id == sid)
        assert any(r[0] == b"POST /upload HTTP/1.1" and r[2] == b"hello" for b in web.values() for r in b.requests)
        c.close()  # our close_notify: the TLS shutdown completes, the last flow is gone
        assert lb.proc.wait(10) == 0  # drained before `timeout drain` (30 s)
    finally:
        c.close()
