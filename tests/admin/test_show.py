"""Every `buddylb show ...` against a running shop, in text and JSON (SPEC §4).

One instance for the module, visited once: clients .21-.24 go HTTP then "HTTPS" (two
farms of buddy sticky group alpha), .31 uses the non-buddy solo VIP, .35 the Lab VIP.
The tests here only read, so they can share it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.admin.support import Shop, run_cli, running_shop
from tests.support.net import free_port

BUDDY_CLIENTS = [f"127.0.0.{n}" for n in range(21, 25)]


@pytest.fixture(scope="module")
def visited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shop, dict[str, tuple[str, str]]]]:
    with running_shop(tmp_path_factory.mktemp("show")) as shop:
        served = {c: (shop.get(c, "http"), shop.get(c, "https")) for c in BUDDY_CLIENTS}
        shop.get("127.0.0.31", "solo")
        shop.get("127.0.0.35", "lab")
        yield shop, served


def _rs(backend_name: str) -> str:
    return backend_name.split("-")[0]  # "lnx1-http" -> "lnx1"


def test_one_to_one_as_served(visited) -> None:
    _, served = visited
    for http, https in served.values():
        assert _rs(http) == _rs(https)
    assert {_rs(h) for h, _ in served.values()} == {"lnx1", "lnx2"}


# -- show sticky database -----------------------------------------------------------------------
def test_sticky_database_json(visited) -> None:
    shop, served = visited
    rows = shop.json("show", "sticky", "database")
    assert len(rows) == 6
    alpha = {r["key"]: r for r in rows if r["scope"] == "alpha"}
    assert set(alpha) == {f"{c}->127.0.0.100" for c in BUDDY_CLIENTS}
    for client, (http, https) in served.items():
        r = alpha[f"{client}->127.0.0.100"]
        assert r["context"] == "Admin" and r["type"] == "ip-netmask" and r["flags"] == ["buddy"]
        assert r["last_serverfarm"] == "decrypted" and r["last_rserver"] == _rs(https)
        assert r["serverfarms"] == {"http": _rs(http), "decrypted": _rs(https)}
        assert 1700 < r["expires_in_s"] <= 1800 and r["open_connections"] == 0
    solo = [r for r in rows if r["scope"] == "stick-solo"]
    assert [r["key"] for r in solo] == ["127.0.0.0/24"] and solo[0]["flags"] == []
    assert [(r["context"], r["key"]) for r in rows if r["scope"] == "stick-lab"] == [("Lab", "127.0.0.35")]


def test_sticky_database_text(visited) -> None:
    shop, served = visited
    r = shop.cli("show", "sticky", "database")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "sticky database: 6 entries"
    assert lines[1].split()[:4] == ["context", "scope", "type", "key"]
    http, https = served["127.0.0.21"]
    row = next(ln for ln in lines if "127.0.0.21->127.0.0.100" in ln).split()
    assert row[:6] == ["Admin", "alpha", "ip-netmask", "127.0.0.21->127.0.0.100", "decrypted", _rs(https)]
    assert row[6] == f"http={_rs(http)},decrypted={_rs(https)}" and row[-1] == "buddy"


@pytest.mark.parametrize("words, scopes", [
    (["buddy"], ["alpha"] * 4),
    (["context", "Lab"], ["stick-lab"]),
    (["context", "Admin", "group", "stick-cart"], ["alpha"] * 4),  # a member sticky group names its scope
    (["context", "Admin", "group", "alpha"], ["alpha"] * 4),
    (["context", "Admin", "group", "stick-solo"], ["stick-solo"]),
    (["client", "127.0.0.22"], ["alpha", "stick-solo"]),  # the /24 entry of .31 covers .22
    (["client", "127.0.0.31"], ["stick-solo"]),
    (["client", "127.0.1.31"], []),
    (["buddy", "context", "Admin", "client", "127.0.0.23"], ["alpha"]),
    (["buddy", "context", "Lab"], []),
])
def test_sticky_database_filters(visited, words, scopes) -> None:
    shop, _ = visited
    assert sorted(r["scope"] for r in shop.json("show", "sticky", "database", *words)) == scopes


def test_sticky_database_group_without_context(visited) -> None:
    shop, _ = visited
    assert sorted(r["scope"] for r in shop.json("show", "sticky", "database", "group", "stick-solo")) == ["stick-solo"]


def test_sticky_database_unknown_group(visited) -> None:
    shop, _ = visited
    r = shop.cli("show", "sticky", "database", "context", "Admin", "group", "nope")
    assert r.returncode == 1 and r.stdout == ""
    assert 'sticky group "nope" does not exist' in r.stderr


# -- show sticky client (the explain view) -------------------------------------------------------
def test_sticky_client_explains_two_farms_json(visited) -> None:
    shop, served = visited
    http, https = served["127.0.0.21"]
    scopes = {s["scope"]: s for s in shop.json("show", "sticky", "client", "127.0.0.21", "context", "Admin")}
    assert set(scopes) == {"alpha", "stick-solo"}
    alpha = scopes["alpha"]
    assert alpha["buddy"] and alpha["key"] == "127.0.0.21->127.0.0.100"
    assert alpha["entry"]["last_serverfarm"] == "decrypted" and alpha["entry"]["last_rserver"] == _rs(https)
    farms = {f["serverfarm"]: f for f in alpha["serverfarms"]}
    group = "blue" if _rs(http) == "lnx1" else "red"
    # back on the HTTP VIP: the last farm is `decrypted`, so rule 4 (the buddy of the last rserver)
    assert farms["http"]["outcome"] == "buddy_hit" and farms["http"]["rserver"] == _rs(http)
    assert farms["http"]["rule"] == f"4: remembered rserver in buddy group {group}"
    assert farms["decrypted"]["outcome"] == "sticky_hit" and farms["decrypted"]["rserver"] == _rs(https)
    assert farms["decrypted"]["rule"].startswith("3:")
    solo = scopes["stick-solo"]  # the /24 entry of .31 covers .21 too
    assert solo["key"] == "127.0.0.0/24" and solo["entry"]["last_serverfarm"] == "http"
    assert solo["serverfarms"][0]["outcome"] == "sticky_hit"


def test_sticky_client_new_client_and_text(visited) -> None:
    shop, served = visited
    scopes = shop.json("show", "sticky", "client", "10.9.8.7")
    alpha = next(s for s in scopes if s["scope"] == "alpha")
    assert alpha["entry"] is None
    assert {f["outcome"] for f in alpha["serverfarms"]} == {"new"}
    assert all(f["rserver"] is None and f["candidates"] == ["lnx1", "lnx2"] for f in alpha["serverfarms"])
    assert all(f["rule"] == "2: no entry, predictor" for f in alpha["serverfarms"])
    http, _ = served["127.0.0.22"]
    r = shop.cli("show", "sticky", "client", "127.0.0.22")
    assert r.returncode == 0
    assert "context Admin  scope alpha (buddy)  key 127.0.0.22->127.0.0.100" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("http "))
    assert line.split()[:3] == ["http", _rs(http), "buddy_hit"]
    assert "context Lab  scope stick-lab  key 127.0.0.22" in r.stdout


def test_sticky_client_predicts_the_data_path(visited) -> None:
    shop, _ = visited
    scopes = shop.json("show", "sticky", "client", "127.0.0.24", "context", "Admin")
    want = next(f for s in scopes if s["scope"] == "alpha" for f in s["serverfarms"] if f["serverfarm"] == "http")
    assert _rs(shop.get("127.0.0.24", "http")) == want["rserver"]
    shop.get("127.0.0.24", "https")  # put the entry back as the other tests expect it


def test_sticky_client_bad_address(visited) -> None:
    shop, _ = visited
    r = shop.cli("show", "sticky", "client", "not-an-ip")
    assert r.returncode == 1 and '"not-an-ip" is not an IP address' in r.stderr
    r = shop.cli("show", "sticky", "client")
    assert r.returncode == 2 and "show sticky client needs ADDRESS" in r.stderr


# -- rserver / serverfarm / buddy-group / probe / stats -----------------------------------------
def test_rserver(visited) -> None:
    shop, _ = visited
    rows = shop.json("show", "rserver")
    assert [(r["context"], r["rserver"]) for r in rows] == [("Admin", "lnx1"), ("Admin", "lnx2"), ("Lab", "lnx1")]
    lnx1 = shop.json("show", "rserver", "lnx1", "context", "Admin")
    assert len(lnx1) == 1 and lnx1[0]["address"] == "127.0.1.11"
    assert (lnx1[0]["admin_state"], lnx1[0]["state"]) == ("INSERVICE", "OPERATIONAL")
    assert [(f["serverfarm"], f["port"], f["weight"], f["buddy_group"]) for f in lnx1[0]["serverfarms"]] == [
        ("http", shop.ports["p_http1"], 8, "blue"), ("decrypted", shop.ports["p_dec1"], 8, "blue")]
    text = shop.cli("show", "rserver").stdout.splitlines()
    assert text[0].split() == ["context", "rserver", "address", "admin", "state", "conns", "serverfarm:weight"]
    assert text[2].split() == ["Admin", "lnx1", "127.0.1.11", "INSERVICE", "OPERATIONAL", "0", "http:8,decrypted:8"]
    detail = shop.cli("show", "rserver", "lnx2", "detail", "context", "Admin").stdout
    assert detail.startswith("rserver lnx2 (context Admin)  127.0.1.12  host weight 8  admin INSERVICE  "
                             "state OPERATIONAL")
    assert f"decrypted   {shop.ports['p_dec2']}  8       red          OPERATIONAL" in detail


def test_rserver_unknown_name(visited) -> None:
    shop, _ = visited
    for as_json in ((), ("--json",)):
        r = shop.cli("show", "rserver", "lnx9", *as_json)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.strip() == 'buddylb: rserver "lnx9" does not exist'


def test_serverfarm(visited) -> None:
    shop, _ = visited
    farms = {f["serverfarm"]: f for f in shop.json("show", "serverfarm")}
    assert set(farms) == {"http", "decrypted", "lab"}
    http = farms["http"]
    assert http["predictor"] == "roundrobin" and http["probes"] == ["TCP-CHECK"]
    assert [(m["rserver"], m["port"], m["weight"], m["state"], m["buddy_group"]) for m in http["rservers"]] == [
        ("lnx1", shop.ports["p_http1"], 8, "OPERATIONAL", "blue"),
        ("lnx2", shop.ports["p_http2"], 8, "OPERATIONAL", "red")]
    text = shop.cli("show", "serverfarm", "decrypted").stdout
    assert text.splitlines()[0] == "serverfarm decrypted (context Admin)  predictor roundrobin  probes -"
    assert "conn-limit" not in text
    detail = shop.cli("show", "serverfarm", "http", "detail").stdout
    assert "backup  conn-limit" in detail
    r = shop.cli("show", "serverfarm", "nofarm")
    assert r.returncode == 1 and 'serverfarm "nofarm" does not exist' in r.stderr


def test_buddy_group(visited) -> None:
    shop, _ = visited
    data = shop.json("show", "buddy-group")
    assert {g["name"]: g["serverfarms"] for g in data["buddy_real_groups"]} == {
        "blue": {"http": ["lnx1"], "decrypted": ["lnx1"]}, "red": {"http": ["lnx2"], "decrypted": ["lnx2"]}}
    (alpha,) = data["buddy_sticky_groups"]
    assert alpha["name"] == "alpha" and alpha["sticky_groups"] == ["stick-cart", "stick-credit"]
    assert alpha["effective_mask"] == "255.255.255.255" and alpha["effective_timeout_s"] == 1800
    one = shop.json("show", "buddy-group", "blue")
    assert [g["name"] for g in one["buddy_real_groups"]] == ["blue"] and one["buddy_sticky_groups"] == []
    text = shop.cli("show", "buddy-group", "alpha", "detail").stdout
    assert "effective mask   effective timeout(s)  v6 prefix  activeconns" in text
    assert "alpha" in text and "255.255.255.255" in text
    r = shop.cli("show", "buddy-group", "green")
    assert r.returncode == 1 and 'buddy group "green" does not exist' in r.stderr


def test_probe(visited) -> None:
    shop, _ = visited
    rows = shop.json("show", "probe")
    assert [(r["probe"], r["serverfarm"], r["rserver"], r["port"], r["state"]) for r in rows] == [
        ("TCP-CHECK", "http", "lnx1", shop.ports["p_http1"], "UP"),
        ("TCP-CHECK", "http", "lnx2", shop.ports["p_http2"], "UP")]
    assert all(r["consecutive_failures"] == 0 for r in rows)
    assert [r["rserver"] for r in shop.json("show", "probe", "TCP-CHECK")] == ["lnx1", "lnx2"]
    text = shop.cli("show", "probe", "TCP-CHECK").stdout.splitlines()
    assert text[0].split()[:3] == ["probe", "serverfarm", "rserver"] and len(text) == 4
    r = shop.cli("show", "probe", "HTTP-CHECK")
    assert r.returncode == 1 and 'probe "HTTP-CHECK" does not exist' in r.stderr


def test_stats_sticky(visited) -> None:
    shop, _ = visited
    stats = {s["context"]: s for s in shop.json("show", "stats", "sticky")}
    admin = stats["Admin"]
    assert admin["entries"] == 5 and admin["capacity"] == 1048576
    assert admin["buddy_sticky_groups"] == 1 and admin["store"] == {"kind": "memory", "degraded": False}
    assert admin["misses"] >= 5 and admin["buddy_hits"] >= 4
    assert stats["Lab"]["entries"] == 1 and stats["Lab"]["misses"] == 1
    only = shop.json("show", "stats", "sticky", "context", "Lab")
    assert [s["context"] for s in only] == ["Lab"]
    text = shop.cli("show", "stats", "sticky", "context", "Lab").stdout.splitlines()
    assert text[0] == "sticky statistics, context Lab (store memory)"
    assert text[1].split() == ["entries", "1"]


# -- the CLI itself --------------------------------------------------------------------------------
def test_json_is_one_document_and_keywords_are_case_insensitive(visited) -> None:
    shop, _ = visited
    r = shop.cli("show", "Stats", "STICKY", "--json")
    assert r.returncode == 0 and r.stderr == ""
    assert isinstance(json.loads(r.stdout), list)


def test_admin_address_from_environment(visited) -> None:
    shop, _ = visited
    r = shop.cli("show", "rserver", "--json", env={"BUDDYLB_ADMIN": shop.lb.admin}, admin=False)
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 3


@pytest.mark.parametrize("words, message", [
    (["show", "bogus"], "unknown command: buddylb show bogus"),
    (["show", "rserver", "lnx1", "lnx2"], 'unexpected word "lnx2"'),
    (["show", "sticky", "database", "context"], '"context" needs a value: context C'),
    (["clear", "sticky", "database", "client", "1.2.3.4"], 'unexpected word "client"'),
    (["set", "rserver", "lnx1"], "set rserver needs one of: inservice, outofservice"),
])
def test_usage_errors(words, message) -> None:
    r = run_cli(*words, "--admin", "127.0.0.1:9")  # parsing fails before any connection
    assert r.returncode == 2 and r.stdout == ""
    assert message in r.stderr and "usage:\n  buddylb " in r.stderr


def test_instance_not_running(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_port()}"
    for extra in ((), ("--json",)):
        r = run_cli("show", "stats", "sticky", "--admin", addr, *extra)
        assert r.returncode == 3 and r.stdout == ""
        assert r.stderr.strip() == (f"buddylb: no buddylb answers on {addr}: is it running? "
                                    "start it with buddylb run CONFIG or pass --admin")
