"""The commands that change a running buddylb: clear sticky database, set rserver, reload."""
from __future__ import annotations

import json

from tests.admin.support import Shop


def _keys(shop: Shop) -> set[tuple[str, str]]:
    return {(r["context"], r["key"]) for r in shop.json("show", "sticky", "database")}


def _clear(shop: Shop, *words: str) -> int:
    return shop.json("clear", "sticky", "database", *words)["removed"]


def test_clear_by_key_group_rserver_context(shop: Shop) -> None:
    for c in ("127.0.0.61", "127.0.0.62"):
        shop.get(c, "http")
        shop.get(c, "https")
    shop.get("127.0.0.63", "solo")
    shop.get("127.0.0.64", "lab")
    assert _keys(shop) == {("Admin", "127.0.0.61->127.0.0.100"), ("Admin", "127.0.0.62->127.0.0.100"),
                           ("Admin", "127.0.0.0/24"), ("Lab", "127.0.0.64")}

    assert _clear(shop, "key", "127.0.0.61->127.0.0.100") == 1
    assert ("Admin", "127.0.0.61->127.0.0.100") not in _keys(shop) and len(_keys(shop)) == 3

    r = shop.cli("clear", "sticky", "database", "group", "stick-solo")
    assert r.returncode == 0 and r.stdout == "cleared 1 sticky entry\n"
    assert _keys(shop) == {("Admin", "127.0.0.62->127.0.0.100"), ("Lab", "127.0.0.64")}

    (row,) = shop.json("show", "sticky", "database", "client", "127.0.0.62")
    assert _clear(shop, "rserver", row["last_rserver"], "context", "Admin") == 1
    assert _keys(shop) == {("Lab", "127.0.0.64")}

    assert _clear(shop, "context", "Lab") == 1
    assert _keys(shop) == set()

    shop.get("127.0.0.65", "http")
    shop.get("127.0.0.66", "lab")
    r = shop.cli("clear", "sticky", "database")
    assert r.returncode == 0 and r.stdout == "cleared 2 sticky entries\n"
    assert _keys(shop) == set()


def test_clear_errors(shop: Shop) -> None:
    r = shop.cli("clear", "sticky", "database", "context", "Nowhere")
    assert r.returncode == 1 and 'context "Nowhere" does not exist' in r.stderr
    r = shop.cli("clear", "sticky", "database", "context", "Admin", "rserver", "lnx7")
    assert r.returncode == 1 and 'rserver "lnx7" does not exist in context Admin' in r.stderr


def test_clear_then_client_is_new_again(shop: Shop) -> None:
    shop.get("127.0.0.67", "http")
    _clear(shop, "context", "Admin", "key", "127.0.0.67->127.0.0.100")
    scopes = shop.json("show", "sticky", "client", "127.0.0.67", "context", "Admin")
    alpha = next(s for s in scopes if s["scope"] == "alpha")
    assert alpha["entry"] is None and {f["outcome"] for f in alpha["serverfarms"]} == {"new"}


def test_set_rserver_outofservice_then_inservice(shop: Shop) -> None:
    r = shop.cli("set", "rserver", "lnx1", "outofservice", "context", "Admin")
    assert r.returncode == 0
    assert r.stdout.startswith("rserver lnx1: out of service") and "context Admin" in r.stdout
    (lnx1,) = shop.json("show", "rserver", "lnx1", "context", "Admin")
    assert (lnx1["admin_state"], lnx1["state"], lnx1["operator_out"]) == ("OUTOFSERVICE", "OUTOFSERVICE", True)
    assert {f["state"] for f in lnx1["serverfarms"]} == {"OUTOFSERVICE"}
    (lab,) = shop.json("show", "rserver", "lnx1", "context", "Lab")
    assert (lab["admin_state"], lab["state"]) == ("INSERVICE", "OPERATIONAL")  # the context filter kept it to Admin
    # every new client avoids lnx1, in both farms
    for n in range(71, 75):
        assert shop.get(f"127.0.0.{n}", "http") == "lnx2-http"
        assert shop.get(f"127.0.0.{n}", "https") == "lnx2-dec"
    assert shop.get("127.0.0.75", "lab") == "lnx1-http"

    data = shop.json("set", "rserver", "lnx1", "inservice")
    assert data == {"rserver": "lnx1", "state": "inservice", "inservice": True, "contexts": ["Admin", "Lab"]}
    assert shop.json("show", "rserver", "lnx1", "context", "Admin")[0]["admin_state"] == "INSERVICE"
    served = {shop.get(f"127.0.0.{n}", "http") for n in range(76, 80)}
    assert served == {"lnx1-http", "lnx2-http"}


def test_set_rserver_errors(shop: Shop) -> None:
    r = shop.cli("set", "rserver", "lnx9", "outofservice")
    assert r.returncode == 1 and 'rserver "lnx9" does not exist' in r.stderr
    r = shop.cli("set", "rserver", "lnx1", "outofservice", "inservice")
    assert r.returncode == 2 and 'unexpected word "inservice"' in r.stderr


def test_reload_through_the_cli(shop: Shop) -> None:
    shop.get("127.0.0.81", "http")
    shop.get("127.0.0.81", "https")
    before = _keys(shop)
    shop.lb.config.write_text(shop.config(lnx2_weight="weight 3\n  "))
    r = shop.cli("reload")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "reload: configuration generation 2 in service\n"
    assert shop.json("show", "rserver", "lnx2", "context", "Admin")[0]["host_weight"] == 3
    assert _keys(shop) == before  # SPEC §5: a reload keeps the sticky entries whose scope and rserver stay

    data = shop.json("reload")
    assert data["reloaded"] is True and data["generation"] == 3


def test_reload_refused_keeps_serving(shop: Shop) -> None:
    shop.lb.config.write_text(shop.config() + "frobnicate all the things\n")
    r = shop.cli("reload")
    assert r.returncode == 1 and r.stdout == ""
    assert "frobnicate" in r.stderr and "reload refused; the running configuration is unchanged" in r.stderr
    r = shop.cli("reload", "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["reloaded"] is False and data["generation"] == 1 and data["messages"]
    assert shop.get("127.0.0.82", "http") in ("lnx1-http", "lnx2-http")
    assert shop.lb.api("/info")["data"]["generation"] == 1


def test_clear_by_bare_client_address_on_address_both_scope(shop: Shop) -> None:
    shop.get("127.0.0.68", "http")
    assert ("Admin", "127.0.0.68->127.0.0.100") in _keys(shop)
    assert _clear(shop, "key", "127.0.0.68") == 1  # the entry's key is 127.0.0.68->127.0.0.100
    assert ("Admin", "127.0.0.68->127.0.0.100") not in _keys(shop)


def test_explain_says_no_server_when_the_farm_is_empty(shop: Shop) -> None:
    """Issue 18: with every rserver of farm http out of service, the explain view says
    `no_server` — and the next request does get 503, counted as `no_server`."""
    from tests.admin.support import VIP
    from tests.admin.test_metrics import scrape, total
    from tests.support.net import http_get

    client = "127.0.0.91"
    assert shop.get(client, "http").endswith("-http")
    for rs in ("lnx1", "lnx2"):
        assert shop.cli("set", "rserver", rs, "outofservice", "context", "Admin").returncode == 0
    scopes = shop.json("show", "sticky", "client", client, "context", "Admin")
    alpha = next(s for s in scopes if s["scope"] == "alpha")
    assert alpha["entry"] is not None  # the entry stays; rule 6 comes first anyway
    http = next(f for f in alpha["serverfarms"] if f["serverfarm"] == "http")
    assert (http["outcome"], http["rserver"], http["next_rserver"], http["candidates"]) == ("no_server", None, None, [])
    assert http["rule"].startswith("6:")
    text = shop.cli("show", "sticky", "client", client, "context", "Admin").stdout
    assert any(ln.split()[:2] == ["http", "none"] and "no_server" in ln for ln in text.splitlines())
    before = total(scrape(shop.lb.admin), "buddylb_decisions_total", farm="http", outcome="no_server")
    status, _, _ = http_get(client, VIP, shop.ports["v_http"])
    assert status == 503
    after = total(scrape(shop.lb.admin), "buddylb_decisions_total", farm="http", outcome="no_server")
    assert after == before + 1


def test_show_sticky_database_pages_and_filters_through_the_cli(shop: Shop) -> None:
    """Issue 11: `limit` / `cursor` pages and the farm / rserver / client-prefix filters."""
    for n in range(101, 106):
        shop.get(f"127.0.0.{n}", "http")
    want = {r["key"] for r in shop.json("show", "sticky", "database", "group", "alpha")}
    assert len(want) == 5
    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(3):
        page = shop.json("show", "sticky", "database", "group", "alpha", "limit", "2", *cursor)
        seen += [r["key"] for r in page]
        if len(page) < 2:
            break
        cursor = ["cursor", page[-1]["cursor"]]
    assert sorted(seen) == sorted(want)
    text = shop.cli("show", "sticky", "database", "group", "alpha", "limit", "2").stdout
    assert "sticky database: 2 entries" in text and "more entries: next page with cursor " in text
    on_lnx1 = shop.json("show", "sticky", "database", "client", "127.0.0.0/24", "farm", "http", "rserver", "lnx1")
    assert on_lnx1 and all(r["serverfarms"]["http"] == "lnx1" for r in on_lnx1)
    r = shop.cli("show", "sticky", "database", "limit", "none")
    assert r.returncode != 0 and 'limit must be a positive number of rows, not "none"' in r.stderr
