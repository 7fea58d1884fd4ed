"""The three `sticky-store` URL forms (SPEC §2.1, issue 15) and what a wrong one says."""
from __future__ import annotations

import pytest

from buddylb.config.storeurl import parse_store_url


def test_the_three_forms():
    assert parse_store_url("redis://127.0.0.1:6379/2").kind == "redis"
    s = parse_store_url("redis-sentinel://127.0.0.1:26379,127.0.0.2:26380,127.0.0.3/shop/3")
    assert (s.kind, s.hosts, s.master, s.db) == (
        "sentinel", (("127.0.0.1", 26379), ("127.0.0.2", 26380), ("127.0.0.3", 26379)), "shop", 3)
    assert parse_store_url("redis-sentinel://127.0.0.1:26379/shop").db == 0
    c = parse_store_url("redis-cluster://127.0.0.1:7000,[::1]:7001")
    assert (c.kind, c.hosts) == ("cluster", (("127.0.0.1", 7000), ("::1", 7001)))


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:6379/0", "is not a Redis URL"),
    ("redis://127.0.0.1:99999/0", "bad port"),
    ("redis-sentinel://127.0.0.1:26379", "/MASTER/DB"),
    ("redis-sentinel://127.0.0.1:26379/m/x", "/MASTER/DB"),
    ("redis-sentinel://127.0.0.1:x/m", "H1:P1,H2:P2"),
    ("redis-cluster:///", "lists no node"),
    ("redis-cluster://127.0.0.1:7000/0", "no database"),
])
def test_a_wrong_url_says_how_to_write_it(url, says):
    with pytest.raises(ValueError, match=says.replace("/", "/").replace(".", r"\.")):
        parse_store_url(url)


def test_check_accepts_sentinel_and_cluster_lines_and_names_the_line_of_a_bad_one():
    from buddylb.config.parser import check_text
    from pathlib import Path

    for line in ("sticky-store redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/shop/0 prefix s: timeout 80\n",
                 "sticky-store redis-cluster://127.0.0.1:7000,127.0.0.1:7001\n"):
        cfg, diags = check_text(line, "lb.cfg", Path("."))
        assert [d for d in diags if d.severity == "error"] == [] and cfg.sticky_store.url == line.split()[1]
    _, diags = check_text("sticky-store redis-sentinel://127.0.0.1:26379\n", "lb.cfg", Path("."))
    errors = [str(d) for d in diags if d.severity == "error"]
    assert len(errors) == 1 and errors[0].startswith("lb.cfg:1:") and "MASTER" in errors[0]


def test_writeback_rate_option():
    from buddylb.config.parser import check_text
    from pathlib import Path

    cfg, diags = check_text("sticky-store redis://127.0.0.1:6379/0 writeback-rate 500 prefix a:\n", "lb.cfg", Path("."))
    assert [d for d in diags if d.severity == "error"] == []
    assert (cfg.sticky_store.writeback_rate, cfg.sticky_store.prefix) == (500, "a:")
    cfg, _ = check_text("sticky-store redis://127.0.0.1:6379/0\n", "lb.cfg", Path("."))
    assert cfg.sticky_store.writeback_rate == 20_000
    _, diags = check_text("sticky-store redis://127.0.0.1:6379/0 writeback-rate 0\n", "lb.cfg", Path("."))
    assert [d.line for d in diags if d.severity == "error"] == [1]
