"""`set rserver NAME drain` and the drain preview for it, and each probe target's result
history in `show probe` (issue 14), through the CLI and the admin API of a running shop."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from tests.admin.support import LNX1, Shop

CLIENTS = [f"127.0.0.{n}" for n in range(120, 140)]
NEWCOMERS = [f"127.0.0.{n}" for n in range(140, 160)]


def _post(shop: Shop, path: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{shop.lb.admin}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_drain_keeps_stuck_clients_and_turns_new_ones_away(shop: Shop) -> None:
    first = {c: shop.get(c, "http") for c in CLIENTS}
    stuck = [c for c, b in first.items() if b == "lnx1-http"]
    assert 0 < len(stuck) < len(CLIENTS)

    preview = shop.json("show", "impact", "rserver", "lnx1", "context", "Admin", "drain")
    assert preview["action"] == "drain"
    (http,) = [r for r in preview["serverfarms"] if r["serverfarm"] == "http" and r["scope"] == "alpha"]
    assert (http["entries"], http["keep"], http["follow_buddy"], http["restick"]) == (len(stuck), len(stuck), 0, 0)
    assert http["stay"] == len(stuck)
    assert http["to"] == {"lnx1": len(stuck)} and http["new_clients"] == {"lnx2": 1.0}
    text = shop.cli("show", "impact", "rserver", "lnx1", "context", "Admin", "drain").stdout
    t = preview["totals"]
    assert t["stay"] == t["entries"] == len(stuck)  # entries name lnx1 in http only: nobody visited decrypted yet
    assert text.startswith(f"impact of rserver lnx1 draining: {t['entries']} entries name it; {t['stay']} stay on it; "
                           f"by rule {t['keep']} keep their server, 0 follow a buddy, 0 re-stick, 0 have no server;")
    assert "lnx2=100%" in text

    r = shop.cli("set", "rserver", "lnx1", "drain", "context", "Admin")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "rserver lnx1: draining (clients stuck to it keep it, new clients avoid it) in context Admin\n"
    (lnx1,) = shop.json("show", "rserver", "lnx1", "context", "Admin")
    assert (lnx1["admin_state"], lnx1["state"]) == ("DRAIN", "DRAINING")
    assert "DRAIN" in shop.cli("show", "rserver", "lnx1", "context", "Admin").stdout

    for c in stuck:  # the preview came true: every stuck client keeps lnx1, over HTTPS too (its buddy)
        assert shop.get(c, "http") == "lnx1-http"
        assert shop.get(c, "https") == "lnx1-dec"
    assert {shop.get(c, "http") for c in NEWCOMERS} == {"lnx2-http"}
    assert shop.get("127.0.0.161", "lab") == "lnx1-http"  # context Lab was not drained

    assert shop.json("set", "rserver", "lnx1", "inservice", "context", "Admin")["state"] == "inservice"
    assert shop.json("show", "rserver", "lnx1", "context", "Admin")[0]["admin_state"] == "INSERVICE"
    assert {shop.get(f"127.0.0.{n}", "http") for n in range(162, 168)} == {"lnx1-http", "lnx2-http"}


def test_set_rserver_state_field_is_checked(shop: Shop) -> None:
    status, body = _post(shop, "/set/rserver/lnx1", {"state": "sleep"})
    assert status == 400 and "inservice, outofservice, drain" in body["error"]
    status, body = _post(shop, "/set/rserver/lnx1", {"state": "drain", "inservice": True})
    assert status == 400 and "exactly one" in body["error"]
    status, body = _post(shop, "/set/rserver/lnx1", {})
    assert status == 400 and 'missing field "state"' in body["error"]
    status, body = _post(shop, "/set/rserver/lnx1", {"state": "drain", "context": "Lab"})
    assert status == 200 and body["data"] == {"rserver": "lnx1", "state": "drain", "inservice": True,
                                              "contexts": ["Lab"]}
    with urllib.request.urlopen(f"http://{shop.lb.admin}/show/impact/rserver/lnx1?action=drain", timeout=10) as r:
        assert json.loads(r.read())["data"]["action"] == "drain"
    try:
        urllib.request.urlopen(f"http://{shop.lb.admin}/show/impact/rserver/lnx1?action=nap", timeout=10)
        raise AssertionError("an unknown impact action was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400 and "outofservice, drain" in json.loads(exc.read())["error"]


def _history(shop: Shop, rserver: str) -> list[dict]:
    (row,) = [r for r in shop.json("show", "probe", "TCP-CHECK") if r["rserver"] == rserver]
    return row["history"]


def test_probe_history_records_each_result_with_time_outcome_and_latency(shop: Shop) -> None:
    deadline = time.monotonic() + 20
    while len(_history(shop, "lnx1")) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    ok = _history(shop, "lnx1")
    assert len(ok) >= 2 and {h["result"] for h in ok} == {"success"}
    assert all(h["latency_ms"] is not None and 0 <= h["latency_ms"] < 5000 for h in ok)
    assert [h["ts"] for h in ok] == sorted(ok_ts := [h["ts"] for h in ok]) and abs(ok_ts[-1] - time.time()) < 30

    (backend,) = [b for b in shop.backends.servers.values() if b.host == LNX1 and b.port == shop.ports["p_http1"]]
    shop.backends.stop(backend)
    deadline = time.monotonic() + 30
    while _history(shop, "lnx1")[-1]["result"] != "failure" and time.monotonic() < deadline:
        time.sleep(0.3)
    last = _history(shop, "lnx1")[-1]
    assert last["result"] == "failure" and "connect" in last["detail"]
    assert {h["result"] for h in _history(shop, "lnx2")} == {"success"}

    text = shop.cli("show", "probe", "TCP-CHECK", "detail").stdout
    assert "probe TCP-CHECK rserver lnx1 in serverfarm http (context Admin)" in text
    assert any(ln.split()[1:2] == ["failure"] and "connect" in ln for ln in text.splitlines())
    summary = next(ln for ln in text.splitlines() if ln.startswith("TCP-CHECK") and " lnx1 " in ln)
    assert summary.rstrip().endswith("X") and "+" in summary.split()[-1]
