"""Probes as the ACE has them (SPEC §2.1): receive timeout, several expect status ranges,
expect regex with offset, absolute URLs, https with ssl version / cipher, icmp, tcp
banners; a check that cannot run for a local reason (descriptors) never fails a server;
an rserver is failed while ANY of its probes is; probes under `rserver host` apply in
every farm.  Checks run against in-process loopback servers; the last test runs buddylb."""
from __future__ import annotations

import asyncio
import errno
import ssl
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from buddylb.config.parser import parse_text
from buddylb.core.health import ProbeTarget
from buddylb.io.probe_checks import check
from tests.e2e.conftest import VIP
from tests.support.certs import make_cert
from tests.support.net import free_port, http_get, wait_for


def probe(text: str):
    config, diagnostics = parse_text(text, "t.cfg")
    assert [d for d in diagnostics if d.severity == "error"] == []
    (p,) = config.contexts["Admin"].probes.values()
    return p


async def serve(answer: bytes, seen: list, delay: float = 0.0, tls: ssl.SSLContext | None = None,
                banner: bool = False):
    """A one-shot loopback server that records the request and writes `answer` (at once
    when `banner`, as an SMTP server greets)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not banner:
                seen.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            seen.append(b"")
        await asyncio.sleep(delay)
        writer.write(answer)
        await writer.drain()
        writer.close()

    port = free_port("127.0.0.1")
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=tls)
    return server, port


def run_check(p, answer: bytes, delay: float = 0.0, tls=None, banner: bool = False) -> tuple[bool, str, list]:
    async def go():
        seen: list = []
        server, port = await serve(answer, seen, delay, tls, banner)
        try:
            result = await check(p, "127.0.0.1", port)
        finally:
            server.close()
            await server.wait_closed()
        return result.ok, result.detail, seen

    return asyncio.run(go())


OK_302 = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"


def test_several_expect_status_ranges_and_absolute_url() -> None:
    p = probe(
        "probe http H\n  request method get url http://shop.example:8080/health?deep=1\n"
        "  expect status 200 200\n  expect status 301 302\n"
    )
    assert p.receive_timeout_s == 10.0  # ACE's default
    ok, detail, seen = run_check(p, OK_302)
    assert ok and detail == "status 302"
    assert seen[0].startswith(b"GET /health?deep=1 HTTP/1.1\r\nHost: shop.example:8080\r\n")
    single = probe("probe http H\n  expect status 200 200\n")
    assert run_check(single, OK_302)[:2] == (False, "status 302")


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (5, True), (6, False)])
def test_expect_regex_with_offset(offset: int, ok: bool) -> None:
    p = probe(f'probe http H\n  expect regex "st[a-z]+us=OK" offset {offset}\n')
    body = b"xxxx status=OK"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert run_check(p, answer)[0] is ok


def test_receive_bounds_the_wait_for_the_answer() -> None:
    p = probe("probe http H\n  receive 300ms\n  connection term forced\n")
    assert p.forced_close
    ok, detail, _ = run_check(p, OK_302, delay=2.0)
    assert not ok and "timeout" in detail


def test_tcp_probe_banner_regex() -> None:
    p = probe('probe tcp T\n  expect regex "^220 .*ready"\n  receive 2\n')
    assert run_check(p, b"220 mail ready\r\n", banner=True)[0]
    assert not run_check(p, b"554 go away\r\n", banner=True)[0]


def test_https_probe_with_ssl_version_and_cipher(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    p = probe(
        "probe https S\n  ssl version tlsv1_2\n  ssl cipher RSA_ANY\n"
        "  request method get url /ok\n  expect status 200 299\n"
    )
    assert (p.kind, p.ssl_min_version) == ("https", "TLSv1_2")
    ok, detail, seen = run_check(p, b"HTTP/1.1 204 No Content\r\n\r\n", tls=server_ctx)
    assert ok and detail == "status 204" and seen[0].startswith(b"GET /ok HTTP/1.1")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(cert, key)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    modern = probe("probe https S\n  ssl version tlsv1_2\n")
    assert run_check(modern, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", tls=old)[0]


def test_a_check_that_cannot_run_locally_never_fails_the_server() -> None:
    p = probe("probe tcp T\n  faildetect 1\n")

    async def no_descriptors(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    target = ProbeTarget("Admin", "T", "web", "lnx1", "127.0.0.1", 9, 1, 1, 1.0, 1.0)
    for _ in range(5):
        result = asyncio.run(check(p, "127.0.0.1", 9, connect=no_descriptors))
        assert result.local and "not run here" in result.detail
        target.record_local(result.detail)
    assert target.up and target.consecutive_failures == 0 and target.last_result == "not run"
    result = asyncio.run(check(p, "127.0.0.1", 9, connect=refused))
    assert not result.local and target.record(result.ok, result.detail) is False  # a real failure counts


def test_descriptor_exhaustion_in_a_real_process_is_local() -> None:
    """RLIMIT_NOFILE low, every descriptor taken: the probe reports a local failure."""
    script = textwrap.dedent(
        """
        import asyncio, os, resource, socket
        from buddylb.config.parser import parse_text
        from buddylb.io.probe_checks import check
        config, _ = parse_text("probe tcp T\\n", "t.cfg")
        probe = config.contexts["Admin"].probes["T"]
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        async def main():
            loop = asyncio.get_running_loop()  # the loop's own descriptors first
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
            held = []
            try:
                while True:
                    held.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                pass
            result = await check(probe, "127.0.0.1", port)
            for fd in held:
                os.close(fd)
            print(result.local, result.ok, result.detail)

        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True False connect: not run here"), out.stdout


def test_icmp_probe_pings_loopback_or_says_why_not() -> None:
    p = probe("probe icmp PING\n  receive 2\n")
    result = asyncio.run(check(p, "127.0.0.1", 0))
    if result.local:  # neither a ping socket nor a raw socket here: a clear reason, no verdict
        assert "net.ipv4.ping_group_range" in result.detail and "CAP_NET_RAW" in result.detail
    else:
        assert result.ok and result.detail == "echo reply"


def test_any_failed_probe_fails_the_rserver_and_host_probes_apply_in_every_farm(ports, backends, balancer):
    for name, host in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(name, host, ports[f"{name}_web"])
        backends.http(name, host, ports[f"{name}_app"])
    text = f"""\
probe tcp T
  interval 1
  faildetect 1
probe http H
  interval 1
  faildetect 1
  expect regex lnx2
probe http P
  interval 1
  faildetect 1
  expect status 500 599
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  probe P
  inservice
serverfarm host web
  probe T
  probe H
  rserver lnx1 {ports['lnx1_web']}
    inservice
  rserver lnx2 {ports['lnx2_web']}
    inservice
serverfarm host app
  rserver lnx1 {ports['lnx1_app']}
    inservice
  rserver lnx2 {ports['lnx2_app']}
    inservice
class-map match-all APP
  2 match virtual-address {VIP} tcp eq {ports['vip_app']}
class-map match-all WEB
  2 match virtual-address {VIP} tcp eq {ports['vip_web']}
policy-map type loadbalance http first-match APP-LB
  class class-default
    serverfarm app
policy-map type loadbalance http first-match WEB-LB
  class class-default
    serverfarm web
policy-map multi-match VIPS
  class APP
    loadbalance vip inservice
    loadbalance policy APP-LB
  class WEB
    loadbalance vip inservice
    loadbalance policy WEB-LB
service-policy input VIPS
"""
    lb = balancer(text)

    def states() -> dict:
        return {(p["probe"], p["serverfarm"], p["rserver"]): p["state"] for p in lb.api("/show/probe")["data"]}

    want = {
        ("T", "web", "lnx1"): "UP", ("T", "web", "lnx2"): "UP",
        ("H", "web", "lnx1"): "DOWN", ("H", "web", "lnx2"): "UP",
        ("P", "web", "lnx2"): "DOWN", ("P", "app", "lnx2"): "DOWN",  # the host's probe, in both farms
    }
    assert wait_for(lambda: states() == want, 15), states()
    # web: lnx1 fails H while T passes (any failed probe fails it), lnx2 fails P: no server
    assert http_get("127.0.0.10", VIP, ports["vip_web"])[0] == 503
    # app: only lnx2 has a probe (its host's), and it fails: every request reaches lnx1
    assert {http_get(f"127.0.0.{20 + i}", VIP, ports["vip_app"])[2] for i in range(6)} == {b"lnx1"}


def test_inband_health_removes_an_rserver_that_refuses_connections(ports, backends, balancer):
    """ACE `inband-health check remove N`: N refused connects within the reset interval take
    the rserver out of the farm at once, before any probe would notice."""
    backends.tcp("lnx2", "127.0.1.12", ports["up"])
    dead = free_port("127.0.1.11")  # nothing listens: every connect there is refused
    text = f"""\
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  inservice
serverfarm host web
  inband-health check remove 2 reset 10000 resume-service 30
  rserver lnx1 {dead}
    inservice
  rserver lnx2 {ports['up']}
    inservice
class-map match-all V
  2 match virtual-address {VIP} tcp eq {ports['vip']}
policy-map type loadbalance generic first-match LB
  class class-default
    serverfarm web
policy-map multi-match PM
  class V
    loadbalance vip inservice
    loadbalance policy LB
service-policy input PM
"""
    lb = balancer(text)
    from tests.support.net import connect_from

    names = []
    for n in range(8):  # round robin: lnx1's refusals are retried on lnx2 (SPEC §5)
        s = connect_from(f"127.0.0.{60 + n}", VIP, ports["vip"])
        names.append(s.makefile("rb").readline().strip())
        s.close()
    assert set(names) == {b"lnx2"}
    rows = {r["rserver"]: r for f in lb.api("/show/serverfarm/web")["data"] for r in f["rservers"]}
    assert rows["lnx1"]["state"] != "OPERATIONAL" and rows["lnx2"]["state"] == "OPERATIONAL", rows
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'buddylb_inband_failures_total{context="Admin",farm="web",rserver="lnx1"} 2.0' in metrics
    assert "removed from the farm" in lb.stderr()
