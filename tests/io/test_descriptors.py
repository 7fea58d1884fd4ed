"""The descriptor budget's arithmetic (io/descriptors.py, SPEC §5)."""
from __future__ import annotations

from buddylb.config.parser import check_text
from buddylb.io.descriptors import ADMIN_CONNECTIONS, SPARE, plan


def test_derived_from_the_limit_two_per_connection() -> None:
    b = plan(nofile=20_000, in_use=20, probes=100, admin=ADMIN_CONNECTIONS, configured=None)
    assert b.reserved == 100 + ADMIN_CONNECTIONS + SPARE
    assert b.maxconn == b.derived == (20_000 - 20 - b.reserved) // 2
    assert 2 * b.maxconn + b.in_use + b.reserved <= b.nofile
    assert b.resume_at == int(b.maxconn * 0.95) and "derived from the descriptor limit" in b.describe()


def test_configured_maxconn_wins_when_it_fits_and_is_lowered_when_not() -> None:
    assert plan(4000, 20, 0, 64, 1000).maxconn == 1000
    b = plan(4000, 20, 0, 64, 50_000)
    assert b.maxconn == b.derived < 2000 and b.configured == 50_000


def test_a_tiny_limit_still_allows_one_connection() -> None:
    b = plan(50, 20, 10, 64, None)
    assert b.maxconn == 1 and b.resume_at == 0


def test_maxconn_line_is_parsed_once_before_objects() -> None:
    config, diags = check_text("maxconn 5000\n", "t.cfg", None)
    assert config.maxconn == 5000 and not [d for d in diags if d.severity == "error"]
    _, diags = check_text("maxconn 10\nmaxconn 20\n", "t.cfg", None)
    assert any('"maxconn" is repeated' in d.message and d.line == 2 for d in diags)
    _, diags = check_text("rserver host a\n  ip address 127.0.0.1\nmaxconn 10\n", "t.cfg", None)
    assert any("global setting" in d.message and d.line == 3 for d in diags)
