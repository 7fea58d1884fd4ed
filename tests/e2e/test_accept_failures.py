"""Accept failures are logged, counted and stop (issue 13 finding 2: "accept failures are
never logged"). The descriptor budget keeps a correctly sized process away from EMFILE,
so these tests bypass it: the soft limit of the running process is lowered under it
(prlimit), as when the limit is lower than the budget assumed or something else in the
process holds descriptors. libuv meets EMFILE inside its own accept loop and closes the
waiting clients without telling Python; buddylb's watch finds the full table, logs it
once with a count, counts it in /metrics, lowers maxconn and pauses accept, so later
clients wait in the backlog instead of being closed, and are served once there is room.

The second test: accept resumes on the close of a client connection, not at a poll."""
from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path

from tests.admin.support import VIP, running_shop
from tests.e2e.test_descriptors import metric
from tests.support.net import http_get, idle_connections, wait_for


def flood(port: int, n: int, first: int = 1) -> list[socket.socket]:
    """Idle clients of the VIP from 127.0.4.`first`.. (200 sources)."""
    return idle_connections(VIP, port, n, lambda i: f"127.0.4.{first + i % 200}")


def closed_by_peer(socks: list[socket.socket]) -> int:
    n = 0
    for s in socks:
        try:
            if s.recv(1) == b"":
                n += 1
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n


def test_a_full_descriptor_table_is_logged_counted_and_pauses_accept(tmp_path: Path) -> None:
    with running_shop(tmp_path) as shop:
        assert shop.lb.proc is not None
        pid = shop.lb.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        in_use = len(os.listdir(f"/proc/{pid}/fd"))
        port = shop.ports["v_http"]
        first = second = []
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 8, hard))  # far under the budget
            first = flood(port, 60)
            assert wait_for(lambda: "descriptor table full" in shop.lb.stderr(), 10), shop.lb.stderr()[-2000:]
            time.sleep(0.3)
            second = flood(port, 40, first=61)  # accept is paused now: they wait in the backlog
            time.sleep(1.5)
            assert closed_by_peer(second) == 0
        finally:
            for s in first + second:
                s.close()
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        t0 = time.monotonic()
        status, _, body = http_get("127.0.3.2", VIP, port, timeout=5)
        assert status == 200 and time.monotonic() - t0 < 2.0, (status, body)
        assert metric(shop.lb.admin, "buddylb_accept_failed_total") >= 1
        assert metric(shop.lb.admin, 'buddylb_log_events_total{cause="accept_failed"}') >= 1
        log = shop.lb.stderr()
        assert log.count("descriptor table full") <= 2, log[-2000:]  # rate-limited, with a count
        assert "maxconn lowered to" in log


def test_accept_resumes_when_a_client_closes_not_at_a_poll(tmp_path: Path) -> None:
    with running_shop(tmp_path, nofile=200) as shop:
        port = shop.ports["v_http"]
        maxconn = int(metric(shop.lb.admin, "buddylb_maxconn"))
        idle = flood(port, maxconn + 20)
        try:
            assert wait_for(lambda: metric(shop.lb.admin, "buddylb_accept_paused") == 1, 5)
            time.sleep(0.2)
        finally:
            for s in idle:
                s.close()
        # the fallback poll runs once a second; the closes resume accept at once (it took
        # 157 ms when accept resumed at a 50 ms poll; HAProxy: 4 ms)
        t0 = time.monotonic()
        status, _, _ = http_get("127.0.3.2", VIP, port, timeout=5)
        first = time.monotonic() - t0
        assert status == 200 and first < 0.15, first
