"""`show sticky database` filters and pages (issue 11), on an in-process engine."""
from __future__ import annotations

import pytest

from buddylb.admin.views import show_sticky_database
from buddylb.errors import CommandError
from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE
from tests.core.engine import Engine

CLIENTS = [f"10.0.{n // 200}.{n % 200}" for n in range(600)]


@pytest.fixture(scope="module")
def engine() -> Engine:
    e = Engine.from_text(ONE_TO_ONE)
    for i, c in enumerate(CLIENTS):
        e.visit(c, HTTP)
        if i % 3 == 0:
            e.visit(c, HTTPS)  # a third also used farm decrypted
    return e


def db(e: Engine, **kw) -> list[dict]:
    return show_sticky_database(e.snap, e.tables, e.now, **kw)


def test_pages_cover_every_entry_exactly_once(engine: Engine) -> None:
    everything = {r["key"] for r in db(engine)}
    assert len(everything) == 600
    seen: list[str] = []
    cursor = None
    while True:
        page = db(engine, limit=64, cursor=cursor)
        seen += [r["key"] for r in page]
        if len(page) < 64:
            break
        cursor = page[-1]["cursor"]
    assert len(seen) == 600 and set(seen) == everything


def test_filters_match_the_unfiltered_rows(engine: Engine) -> None:
    rows = db(engine)
    on_lnx2 = [r for r in rows if "lnx2" in r["serverfarms"].values()]
    assert 0 < len(on_lnx2) < 600
    assert [r["key"] for r in db(engine, rserver="lnx2")] == [r["key"] for r in on_lnx2]
    used_dec = [r for r in rows if "decrypted" in r["serverfarms"]]
    assert len(used_dec) == 200
    assert [r["key"] for r in db(engine, farm="decrypted")] == [r["key"] for r in used_dec]
    dec_lnx1 = [r["key"] for r in used_dec if r["serverfarms"]["decrypted"] == "lnx1"]
    assert [r["key"] for r in db(engine, farm="decrypted", rserver="lnx1")] == dec_lnx1
    in_24 = [r["key"] for r in rows if r["key"].startswith("10.0.1.")]
    assert len(in_24) == 200 and [r["key"] for r in db(engine, client="10.0.1.0/24")] == in_24
    assert [r["key"] for r in db(engine, client="10.0.2.7")] == ["10.0.2.7->127.0.0.100"]
    assert db(engine, client="10.0.0.0/8", limit=5, rserver="lnx1", farm="http") == [
        r for r in db(engine, farm="http", rserver="lnx1")][:5]
    assert db(engine, farm="nowhere") == [] and db(engine, rserver="lnx9") == []


def test_bad_limit_cursor_and_prefix_are_refused(engine: Engine) -> None:
    for kw, msg in (({"limit": "0"}, "limit must be a positive number"), ({"limit": "x"}, "limit must be"),
                    ({"cursor": "abc"}, "is not a cursor"), ({"client": "10.0.0.0/33"}, "is not an address or prefix"),
                    ({"client": "nope"}, "is not an IP address")):
        with pytest.raises(CommandError, match=msg):
            db(engine, **kw)
