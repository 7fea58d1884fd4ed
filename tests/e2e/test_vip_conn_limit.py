"""Per-VIP connection limit (issue 13 item 2: "a global maxconn N and per-VIP
conn-limit"): `conn-limit max N [min M]` under a multi-match class, the syntax of an
rserver's limit, the behaviour of HAProxy's per-frontend maxconn. At N open client
connections that VIP stops accepting: new clients wait in the kernel's backlog (never
refused), the other VIPs are not affected, a keep-alive connection counts once however
many requests it sends, and the first close below M lets a waiting client in. Each
pause is counted per VIP on /metrics (buddylb_vip_conn_limit_pauses_total)."""
from __future__ import annotations

import socket
import time
import urllib.request

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.e2e.conftest import VIP
from tests.e2e.test_timeouts import read_response
from tests.support.net import connect_from, http_get

LIMIT = 3


def config(ports) -> str:
    limited = vip_policy("small", ports["vip_small"], "web", http=True, sticky=False)
    limited = (limited[0], limited[1] + f"    conn-limit max {LIMIT}\n")
    other = vip_policy("big", ports["vip_big"], "web", http=True, sticky=False)
    return (hosts("lnx1", "lnx2") + farm("web", [("lnx1", ports["lnx1"], None), ("lnx2", ports["lnx2"], None)])
            + service(limited, other))


def metric(lb, series: str) -> float | None:
    """The value of one series on the admin API's /metrics, None when it is absent."""
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def get(s: socket.socket, limit_s: float = 5.0) -> bytes:
    s.sendall(f"GET / HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode())
    return read_response(s, limit_s)


def test_a_vip_at_its_conn_limit_keeps_new_clients_waiting_and_others_serve(ports, backends, balancer):
    backends.http("lnx1", "127.0.1.11", ports["lnx1"])
    backends.http("lnx2", "127.0.1.12", ports["lnx2"])
    lb = balancer(config(ports))
    held = [connect_from(f"127.0.5.{i + 1}", VIP, ports["vip_small"]) for i in range(LIMIT)]
    waiting = None
    try:
        for s in held:  # several requests each: a keep-alive connection counts once
            for _ in range(3):
                assert get(s).startswith(b"HTTP/1.1 200")
        small = f'buddylb_vip_conn_limit_pauses_total{{vip="{VIP}:{ports["vip_small"]}"}}'
        assert metric(lb, small) == 1.0  # the third connection reached the limit: accept paused once
        waiting = connect_from("127.0.5.50", VIP, ports["vip_small"])  # the kernel completes the handshake
        waiting.sendall(f"GET / HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode())
        waiting.settimeout(1.0)
        try:
            data = waiting.recv(65536)
            raise AssertionError(f"a client beyond conn-limit was served or closed: {data!r}")
        except socket.timeout:
            pass  # it waits in the backlog
        # the other VIP is not limited by it
        for i in range(LIMIT + 2):
            status, _, _ = http_get(f"127.0.5.{100 + i}", VIP, ports["vip_big"], timeout=5)
            assert status == 200
        held.pop().close()  # one close below the limit lets the waiting client in at once
        t0 = time.monotonic()
        assert read_response(waiting, 5.0).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - t0 < 1.0
        assert metric(lb, small) == 2.0  # the waiting client made it three again: paused a second time
        assert metric(lb, f'buddylb_vip_conn_limit_pauses_total{{vip="{VIP}:{ports["vip_big"]}"}}') is None
    finally:
        for s in held + ([waiting] if waiting is not None else []):
            s.close()
    log = lb.stderr()
    assert "conn-limit max 3 reached" in log, log[-2000:]


def test_conn_limit_min_above_max_is_refused_with_its_line(ports, tmp_path):
    from buddylb.config.parser import load_config
    from buddylb.errors import ConfigError

    text = config(ports).replace(f"conn-limit max {LIMIT}", "conn-limit max 5 min 9")
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(text)
    try:
        load_config(cfg)
        raise AssertionError("accepted")
    except ConfigError as exc:
        message = str(exc)
    line = text.splitlines().index("    conn-limit max 5 min 9") + 1
    assert f"bad.cfg:{line}" in message and "min 9 is above max 5" in message
