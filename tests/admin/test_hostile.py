"""A hostile or careless admin client against a real `buddylb run` (issue 13 items 3-6):
every malformed request is a JSON 4xx that changes nothing, type confusion is refused,
cross-site requests are refused, and the connection is answered, never left hanging."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Iterator

import pytest

from tests.admin.support import Shop, running_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[Shop]:
    with running_shop(Path(tmp_path_factory.mktemp("hostile"))) as s:
        yield s


def raw(shop: Shop, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
    """One request on its own connection; the reply must be JSON and arrive within 5 s."""
    h = {"Host": shop.lb.admin, "Connection": "close"}
    if method == "POST":
        h |= {"Content-Type": "application/json", "Content-Length": str(len(body))}
    h |= headers or {}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    host, port = shop.lb.admin.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(head.encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head_b, _, payload = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head_b.lower(), data[:300]
    return int(head_b.split()[1]), json.loads(payload)


def inservice(shop: Shop, name: str = "lnx1") -> bool:
    rows = shop.lb.api(f"/show/rserver/{name}")["data"]
    return all(f["state"] != "OUTOFSERVICE" for r in rows for f in r.get("farms", [r]))


def rserver_state(shop: Shop) -> str:
    return json.dumps(shop.lb.api("/show/rserver/lnx1")["data"], sort_keys=True)


@pytest.mark.parametrize("value", ['"false"', '"no"', '"true"', "null", "0", "1", "[]", "{}", '""'])
def test_inservice_must_be_a_json_boolean(shop: Shop, value: str) -> None:
    before = rserver_state(shop)
    status, reply = raw(shop, "POST", "/set/rserver/lnx1", b'{"inservice": %s}' % value.encode())
    assert status == 400 and "must be true or false" in reply["error"]
    assert rserver_state(shop) == before


def test_real_booleans_still_work(shop: Shop) -> None:
    before = rserver_state(shop)
    assert raw(shop, "POST", "/set/rserver/lnx1", b'{"inservice": false}')[0] == 200
    assert rserver_state(shop) != before
    assert raw(shop, "POST", "/set/rserver/lnx1", b'{"inservice": true}')[0] == 200
    assert rserver_state(shop) == before


@pytest.mark.parametrize("path, body, says", [
    ("/clear/sticky-database", b'{"context": ["x"]}', 'field "context" must be a non-empty string'),
    ("/clear/sticky-database", b'{"key": 5}', 'field "key" must be a non-empty string'),
    ("/clear/sticky-database", b'{"rserver": null}', 'field "rserver" must be a non-empty string'),
    ("/clear/sticky-database", b'{"contxt": "Admin"}', 'unknown field "contxt"'),
    ("/set/rserver/lnx1", b'{}', 'missing field "state"'),
    ("/set/rserver/lnx1", b'{"inservice": true, "context": 1}', 'field "context" must be'),
    ("/set/rserver", b'{"inservice": true}', "takes one NAME in the path, got 0"),
    ("/set/rserver/a/b", b'{"inservice": true}', "takes one NAME in the path, got 2"),
    ("/reload", b"[" * 60000, "nested deeper than"),
    ("/reload", b"{" * 60000, "nested deeper than"),
    ("/reload", b'{"a": [[[[[[[[[["deep"]]]]]]]]]]}', "nested deeper than"),
    ("/reload", b"[1, 2]", "must be a JSON object"),
    ("/reload", b"{not json", "invalid JSON body"),
    ("/reload", b'{"x": 1}', 'unknown field "x"'),
    ("/reload", b"\xff\xfe{}", "invalid JSON body"),
])
def test_bad_bodies_are_400_with_a_reason(shop: Shop, path: str, body: bytes, says: str) -> None:
    generation = shop.lb.api("/info")["data"]["generation"]
    status, reply = raw(shop, "POST", path, body)
    assert status == 400 and says in reply["error"], reply
    assert shop.lb.api("/info")["data"]["generation"] == generation
    assert "Task exception" not in shop.lb.stderr() and "Traceback" not in shop.lb.stderr()


@pytest.mark.parametrize("path, status, says", [
    ("/show/rserver?contxt=Admin", 400, 'unknown query parameter "contxt"'),
    ("/show/rserver?context=Admin&context=Lab", 400, "given twice"),
    ("/show/sticky-database?buddy=maybe", 400, 'query parameter "buddy" must be'),
    ("/show/rserver?context=", 400, 'field "context" must be a non-empty string'),
    ("/show/rserver/a/b", 400, "at most one NAME"),
    ("/show/sticky-client", 400, "one ADDRESS"),
    ("/show/rserver/%ff", 400, "not valid UTF-8"),
    ("/show/nothing", 404, "no such command"),
    ("/reload", 405, "mutations need POST"),
])
def test_bad_queries_are_4xx(shop: Shop, path: str, status: int, says: str) -> None:
    got, reply = raw(shop, "GET", path)
    assert got == status and says in reply["error"], reply


@pytest.mark.parametrize("path, body, headers, status", [
    ("/set/rserver/lnx1", b'{"inservice": false}', {"Origin": "http://evil.example",
                                                    "Content-Type": "text/plain"}, 403),
    ("/set/rserver/lnx1", b'{"inservice": false}', {"Content-Type": "text/plain"}, 415),
    ("/reload", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("/reload", b"{}", {"Origin": "http://evil.example"}, 403),
    ("/reload", b"{}", {"Host": "evil.example"}, 421),
    ("/set/rserver/lnx1", b'{"inservice": false}', {"Host": "rebound.evil.example:{port}"}, 421),
])
def test_cross_site_requests_change_nothing(shop: Shop, path: str, body: bytes, headers: dict, status: int) -> None:
    port = shop.lb.admin.rsplit(":", 1)[1]
    before, generation = rserver_state(shop), shop.lb.api("/info")["data"]["generation"]
    got, reply = raw(shop, "POST", path, body, {k: v.replace("{port}", port) for k, v in headers.items()})
    assert got == status and reply["error"]
    assert rserver_state(shop) == before and shop.lb.api("/info")["data"]["generation"] == generation


def test_dns_rebinding_get_is_refused(shop: Shop) -> None:
    assert raw(shop, "GET", "/show/rserver", headers={"Host": "evil.example"})[0] == 421
    assert raw(shop, "GET", "/show/rserver", headers={"Host": "localhost"})[0] == 200


def test_huge_content_length_is_answered_at_once(shop: Shop) -> None:
    status, reply = raw(shop, "POST", "/reload", headers={"Content-Length": "999999999999999999"})
    assert status == 413 and "limit" in reply["error"]


def test_refusals_are_counted_in_metrics(shop: Shop) -> None:
    raw(shop, "POST", "/reload", b"{}", {"Origin": "http://evil.example"})
    host, port = shop.lb.admin.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: {shop.lb.admin}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert b'buddylb_admin_refused_total{code="403"}' in data
