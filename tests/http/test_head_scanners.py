"""The two whole-head scanners agree: `_scan_native` (what the compiled module runs) and
`_scan_portable` (what runs from source) accept the same heads and return the same
values, whatever the bytes; the tests run both in either mode."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buddylb.http import head as H
from buddylb.http import limits

from tests.http.test_fuzz_http import SEEDS, mutated

SAME = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def both(raw: bytes):
    end = raw.find(b"\r\n\r\n")
    if end < 0 or raw[:1] == b"\r":
        return None, None
    head = raw[:end + 2]
    native, portable = H._scan_native(head, end + 4), H._scan_portable(head, end + 4)
    return native, portable


def same(native, portable) -> None:
    assert (native is None) == (portable is None), (native, portable)
    if native is not None:
        (s1, sec1, l1, i1, e1), (s2, sec2, l2, i2, e2) = native, portable
        assert (s1, sec1, l1, e1) == (s2, sec2, l2, e2)
        assert (i1.fields, i1.special, i1.may_drop, i1.underscore) == (
            i2.fields, i2.special, i2.may_drop, i2.underscore)


def test_seeds_agree() -> None:
    accepted = 0
    for raw in SEEDS:
        native, portable = both(raw)
        same(native, portable)
        accepted += native is not None
    assert accepted >= 5  # the valid seeds are accepted by both


def test_values_and_names() -> None:
    native, portable = both(b"GET / HTTP/1.1\r\nHost:  a \t\r\nX_Y: \r\nConnection: close\r\n\r\n")
    same(native, portable)
    start, section, lines, index, end = native
    assert start == b"GET / HTTP/1.1" and lines == [b"Host:  a \t", b"X_Y: ", b"Connection: close"]
    assert index.fields == [(b"host", b"a"), (b"x_y", b""), (b"connection", b"close")]
    assert index.underscore and index.may_drop and index.special == {b"host": [b"a"], b"connection": [b"close"]}


def test_limits_agree() -> None:
    big = b"X: " + b"v" * (limits.MAX_HEADER_LINE - 3)
    for raw in (b"GET /" + b"a" * limits.MAX_REQUEST_LINE + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + big + b"\r\n\r\n", b"GET / HTTP/1.1\r\n" + big + b"v\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * limits.MAX_HEADER_FIELDS + b"\r\n",
                b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * (limits.MAX_HEADER_FIELDS + 1) + b"\r\n",
                b"GET / HTTP/1.1\r\n" + (big + b"\r\n") * 5 + b"\r\n"):
        same(*both(raw))


@SAME
@given(data=mutated())
def test_mutated_heads_agree(data: bytes) -> None:
    same(*both(data))


@SAME
@given(data=st.binary(max_size=300).map(lambda b: b"GET / HTTP/1.1\r\n" + b + b"\r\n\r\n"))
def test_random_fields_agree(data: bytes) -> None:
    same(*both(data))
