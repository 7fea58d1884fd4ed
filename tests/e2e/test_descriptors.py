"""Descriptor exhaustion (issue 13 item 2): buddylb under a low descriptor limit with more
idle clients than its budget. Before the budget, accept met EMFILE, probes failed with
it and marked every rserver DOWN, VIP and admin requests failed during the flood and 503s
outlasted it. Now accept pauses at `maxconn`: probes and the admin API keep working, and
once the flood ends the next request is served at once."""
from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from tests.admin.support import VIP, running_shop
from tests.support.net import http_get

NOFILE = 200  # soft and hard: buddylb cannot raise it
FLOOD = 400  # idle clients, more than the whole limit


def metric(admin: str, name: str) -> float:
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def states(shop) -> set[str]:
    rows = shop.lb.api("/show/serverfarm/http")["data"]
    return {m["state"] for farm in rows for m in farm["rservers"]}


def test_idle_flood_pauses_accept_and_recovers_at_once(tmp_path: Path) -> None:
    with running_shop(tmp_path, nofile=NOFILE) as shop:
        maxconn = metric(shop.lb.admin, "buddylb_maxconn")
        assert 10 <= maxconn < NOFILE / 2
        assert shop.get("127.0.3.1", "http") in ("lnx1-http", "lnx2-http")
        flood: list[socket.socket] = []
        try:
            for i in range(FLOOD):
                s = socket.socket()
                s.setblocking(False)
                s.bind((f"127.0.4.{1 + i % 200}", 0))
                s.connect_ex((VIP, shop.ports["v_http"]))
                flood.append(s)
            time.sleep(2.5)  # longer than the probe interval: probes ran during the flood
            assert metric(shop.lb.admin, "buddylb_accept_paused") == 1
            t0 = time.monotonic()
            assert shop.lb.api("/info")["ok"] is True  # the admin API keeps its reserve
            assert time.monotonic() - t0 < 2.0
            assert states(shop) == {"OPERATIONAL"}, "a probe failed for a local reason"
        finally:
            for s in flood:
                s.close()
        t0 = time.monotonic()
        status, _, body = http_get("127.0.3.2", VIP, shop.ports["v_http"], timeout=5)
        assert status == 200 and time.monotonic() - t0 < 1.0, (status, body)
        for i in range(3, 13):  # and every request after it
            assert shop.get(f"127.0.3.{i}", "http") in ("lnx1-http", "lnx2-http")
        assert metric(shop.lb.admin, "buddylb_accept_pauses_total") >= 1
        log = shop.lb.stderr()
        assert "Too many open files" not in log
        assert log.count("accept paused") <= 2, log[-2000:]  # rate-limited, not one line per client
