"""The dashboard's HTTP side (issue 14 item 1): files, access rules, its views, its memory."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from buddylb.admin.dashboard import COOKIE, session_ok, session_value, set_cookie
from buddylb.admin.history import RESTICK_BURST, History
from tests.admin.support import VIP, Shop, running_shop

TOKEN = "a-token-of-enough-length-0123"


def get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, dict, bytes]:
    headers = dict(headers or {}, **({"Content-Type": "application/json"} if data is not None else {}))
    req = urllib.request.Request(url, headers=headers, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_page_and_files_are_packaged_and_served(shop: Shop) -> None:
    base = f"http://{shop.lb.admin}"
    status, headers, body = get(base + "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"/static/app.js" in body
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = get(f"{base}/static/{name}")
        assert status == 200 and headers["content-type"].startswith(kind) and body
    assert b"http://" not in get(base + "/static/app.js")[2].replace(b"http://www.w3.org/2000/svg", b"")  # nothing fetched
    assert get(base + "/static/../api.py")[0] == 404 and get(base + "/static/secret.txt")[0] == 404


def test_views_on_a_shop(shop: Shop) -> None:
    for n in range(61, 66):
        shop.get(f"127.0.0.{n}", "http")
    for n in (1, 2, 3):
        shop.get(f"127.0.{n}.9", "solo")  # three /24 entries in a second scope
    base = f"http://{shop.lb.admin}"
    m = json.loads(get(base + "/dashboard/map")[2])["data"]
    assert set(m) == {"Admin", "Lab"}
    admin = m["Admin"]
    assert [f["serverfarm"] for f in admin["serverfarms"]] == ["http", "decrypted"]
    assert {g["name"]: g["serverfarms"] for g in admin["buddy_real_groups"]} == {
        "blue": {"http": ["lnx1"], "decrypted": ["lnx1"]}, "red": {"http": ["lnx2"], "decrypted": ["lnx2"]}}
    page = json.loads(get(base + "/dashboard/sticky?context=Admin&offset=4&limit=3")[2])["data"]
    assert (page["total"], page["offset"], len(page["rows"])) == (8, 4, 3)
    everything = json.loads(get(base + "/dashboard/sticky?context=Admin&limit=200")[2])["data"]["rows"]
    assert len(everything) == page["total"]
    assert everything[4:7] == page["rows"]  # the page crosses from scope alpha into stick-solo
    assert {r["scope"] for r in page["rows"]} == {"alpha", "stick-solo"}
    o = json.loads(get(base + "/dashboard/overview")[2])["data"]
    assert {v["vip"] for v in o["contexts"]["Admin"]["vips"]} == {
        f"{VIP}:{shop.ports[k]}" for k in ("v_http", "v_https", "v_solo")}
    assert get(base + "/dashboard/nothing")[0] == 400


def test_token_login_cookie(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    with running_shop(tmp_path, args=["--admin-token-file", str(tmp_path / "token")]) as shop:
        base = f"http://{shop.lb.admin}"
        assert get(base + "/")[0] == 200  # the page itself carries no data
        assert get(base + "/dashboard/map")[0] == 401
        assert get(base + "/login", data=b'{"token": "wrong"}')[0] == 401
        assert get(base + "/login", data=b'[1, 2]')[0] == 400
        status, headers, _ = get(base + "/login", data=json.dumps({"token": TOKEN}).encode())
        assert status == 200
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        value = cookie.split(";", 1)[0]
        assert get(base + "/dashboard/map", {"Cookie": value})[0] == 200
        assert get(base + "/show/rserver", {"Cookie": f"{COOKIE}=forged"})[0] == 401


def test_session_value_is_bound_to_the_token() -> None:
    assert session_value(TOKEN) != session_value(TOKEN + "x") and TOKEN not in set_cookie(TOKEN)
    assert session_ok(TOKEN, f"a=1; {COOKIE}={session_value(TOKEN)}".encode())
    assert not session_ok(TOKEN, f"{COOKIE}={session_value('other-token-xxxxxxxxx')}".encode())
    assert not session_ok(None, f"{COOKIE}={session_value(TOKEN)}".encode())


def _decision(outcome: str, farm: str = "web", group: str | None = "blue", context: str = "tiers"):
    member = SimpleNamespace(farm=farm, buddy_group=group)
    return SimpleNamespace(outcome=outcome, member=member, vip=SimpleNamespace(context=context),
                           farm=SimpleNamespace(name=farm))


def _probe(up: bool):
    return SimpleNamespace(context="tiers", probe="TCP", farm="web", rserver="lnx1", up=up, last_detail="refused")


def test_history_rates_events_and_bounds() -> None:
    h = History()
    decisions = {("tiers", "web", "new"): 10}
    routes = {(False, "127.0.0.100:80", "web", "lnx1"): [10, 0, 0]}
    vips = {"127.0.0.100:80": "tiers"}
    h.sample(100.0, 1000.0, decisions, routes, vips, [_probe(True)], 1)
    for _ in range(4):
        h.observe("decision", _decision("buddy_hit"))
    for _ in range(RESTICK_BURST):
        h.observe("decision", _decision("restick"))
    decisions = {("tiers", "web", "new"): 20, ("tiers", "web", "restick"): RESTICK_BURST}
    routes = {(False, "127.0.0.100:80", "web", "lnx1"): [30, 0, 0]}
    h.sample(105.0, 1005.0, decisions, routes, vips, [_probe(False)], 2)
    r = h.rates()["tiers"]
    assert r["requests"] == [4.0] and r["decisions"]["new"] == [2.0] and r["decisions"]["restick"] == [1.0]
    assert h.buddy_rates() == {("tiers", "web", "blue"): 0.8}
    kinds = [e["kind"] for e in h.events]
    assert kinds == ["probe", "reload", "restick"]
    assert "lnx1 in web (context tiers) DOWN (refused)" in h.events[0]["text"]
    for i in range(1000):
        h.sample(110.0 + i, 1010.0 + i, decisions, routes, vips, [], 2)
        h.add(0.0, "reload", "x")
    assert len(h.samples) == h.samples.maxlen and len(h.events) == h.events.maxlen


@pytest.fixture
def shop(tmp_path: Path):
    with running_shop(tmp_path) as s:
        yield s
