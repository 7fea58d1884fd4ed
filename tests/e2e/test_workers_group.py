"""`--workers 2` behind one admin API (issue 14 item 3): `show` merges both workers'
answers, `clear` / `set` act on every worker and report each, `/metrics` is one exposition."""
from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from buddylb.io.workers import worker_for
from tests.e2e.configs import shopping_cart
from tests.e2e.conftest import VIP
from tests.support.net import http_get

CLIENTS = [f"127.0.0.{n}" for n in range(60, 90)]


def _post(admin: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://{admin}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"]


def _get(admin: str, path: str):
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=10) as r:
        return json.loads(r.read())["data"]


def test_one_admin_api_for_two_workers(ports, backends, balancer):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(shopping_cart(ports, tls=False), "--workers", "2")
    on = Counter(worker_for(c, 2) for c in CLIENTS)
    assert len(on) == 2  # both workers hold clients
    for c in CLIENTS:
        assert http_get(c, VIP, ports["vip_http"])[0] == 200

    rows = _get(lb.admin, "/show/sticky-database")
    assert sorted(r["key"].split("->")[0] for r in rows) == sorted(CLIENTS)  # every client of both workers
    (stats,) = _get(lb.admin, "/show/stats-sticky?context=Admin")
    assert (stats["entries"], stats["misses"]) == (len(CLIENTS), len(CLIENTS))
    far = next(c for c in CLIENTS if worker_for(c, 2) == 1)
    (alpha,) = [s for s in _get(lb.admin, f"/show/sticky-client/{far}") if s["scope"] == "alpha"]
    assert alpha["entry"] is not None  # worker 1's client, explained through worker 0's address
    impact = _get(lb.admin, "/show/impact/rserver/lnx1")
    on_lnx1 = sum(1 for r in rows if r["last_rserver"] == "lnx1")
    assert impact["totals"]["entries"] >= on_lnx1 > 0

    text = urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=10).read().decode()
    decisions = [s for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "buddylb_decisions_total"]
    assert {s.labels["worker"] for s in decisions} == {"0", "1"}
    assert sum(s.value for s in decisions) == len(CLIENTS)

    done = _post(lb.admin, "/set/rserver/lnx1", {"inservice": False})
    assert [w["worker"] for w in done["workers"]] == [0, 1]
    for c in (f"127.0.0.{n}" for n in range(100, 110)):  # new clients on both workers avoid lnx1
        assert http_get(c, VIP, ports["vip_http"])[2] == b"lnx2"
    for r in _get(lb.admin, "/show/rserver/lnx1"):
        assert r["admin_state"] == "OUTOFSERVICE"
    cleared = _post(lb.admin, "/clear/sticky-database", {"rserver": "lnx1"})
    assert cleared["removed"] == on_lnx1 and len(cleared["workers"]) == 2
    assert not [r for r in _get(lb.admin, "/show/sticky-database") if "lnx1" in r["serverfarms"].values()]


def _wait(what: str, probe, timeout: float = 25.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout:g} s")


def test_dashboard_views_speak_for_both_workers(ports, backends, balancer):
    """The dashboard's rates, events and sticky pages under `--workers 2` count the traffic
    and the events of both workers (each samples its own counters every 5 s)."""
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    config = shopping_cart(ports, tls=False).replace(
        "serverfarm host http\n  predictor roundrobin\n",
        "probe tcp TCP-CHECK\n  interval 1\nserverfarm host http\n  predictor roundrobin\n  probe TCP-CHECK\n")
    lb = balancer(config, "--workers", "2")
    on = Counter(worker_for(c, 2) for c in CLIENTS)
    assert len(on) == 2
    for c in CLIENTS:
        assert http_get(c, VIP, ports["vip_http"])[0] == 200

    def counted():
        view = _get(lb.admin, "/dashboard/overview")
        admin = view["contexts"]["Admin"]
        return view if admin["totals"]["requests"] == len(CLIENTS) else None

    view = _wait("every worker's requests in the overview", counted)
    admin = view["contexts"]["Admin"]
    assert view["workers"] == 2 and admin["totals"]["decisions"] == {"new": len(CLIENTS)}
    assert max(admin["series"]["requests"]) > 0 and admin["series"]["t"] == sorted(admin["series"]["t"])

    rows, offset = [], 0
    while True:  # page through both workers' tables, 7 entries a page
        page = _get(lb.admin, f"/dashboard/sticky?offset={offset}&limit=7")
        assert page["total"] == len(CLIENTS)
        rows += page["rows"]
        offset += 7
        if offset >= page["total"]:
            break
    assert sorted(r["key"].split("->")[0] for r in rows) == sorted(CLIENTS)
    assert Counter(r["worker"] for r in rows) == on

    assert _post(lb.admin, "/reload", {})["reloaded"] is True

    def reloaded():
        events = _get(lb.admin, "/dashboard/events")
        return {e["worker"] for e in events if e["kind"] == "reload"} == {0, 1}

    _wait("a reload event from each worker", reloaded)

    def probed():  # each worker probes on its own: one row per target with both workers' results
        rows = _get(lb.admin, "/show/probe/TCP-CHECK")
        return rows if all({h["worker"] for h in r["history"]} == {0, 1} for r in rows) else None

    rows = _wait("both workers' probe results", probed)
    assert sorted(r["rserver"] for r in rows) == ["lnx1", "lnx2"]
    assert all(r["states"] == ["UP", "UP"] and r["checks"] >= 2 for r in rows)


def test_drain_acts_on_both_workers_and_its_preview_sums_them(ports, backends, balancer):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(shopping_cart(ports, tls=False), "--workers", "2")
    first = {c: http_get(c, VIP, ports["vip_http"])[2] for c in CLIENTS}
    stuck = [c for c, b in first.items() if b == b"lnx1"]
    assert {worker_for(c, 2) for c in stuck} == {0, 1}  # lnx1 holds clients of both workers

    preview = _get(lb.admin, "/show/impact/rserver/lnx1?action=drain&farm=http")
    assert (preview["totals"]["entries"], preview["totals"]["stay"]) == (len(stuck), len(stuck))
    done = _post(lb.admin, "/set/rserver/lnx1", {"state": "drain"})
    assert [(w["worker"], w["state"]) for w in done["workers"]] == [(0, "drain"), (1, "drain")]
    assert {r["admin_state"] for r in _get(lb.admin, "/show/rserver/lnx1")} == {"DRAIN"}
    for c in stuck:
        assert http_get(c, VIP, ports["vip_http"])[2] == b"lnx1"
    newcomers = [f"127.0.0.{n}" for n in range(100, 116)]
    assert {worker_for(c, 2) for c in newcomers} == {0, 1}
    assert {http_get(c, VIP, ports["vip_http"])[2] for c in newcomers} == {b"lnx2"}
