"""The smuggling corpus for HTTP/2 (RFC 9113 §8): each malformed field list is refused
as a stream error before any HTTP/1.1 text exists, and whatever is accepted becomes
exactly one request that the HTTP/1.1 parser reads back with the same fields."""
from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buddylb.errors import ProtocolError
from buddylb.http.request import RequestHead, RequestParser
from buddylb.io.h2.fields import Malformed, check_request, response_fields

from tests.http.reparse import messages, run

BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a.example")]


class Case(NamedTuple):
    id: str
    fields: list
    rule: str


def with_(*extra: tuple[bytes, bytes]) -> list:
    """BASE, then `extra`."""
    return BASE + list(extra)


def insert(at: int, name: bytes, value: bytes) -> list:
    """BASE with one more field at position `at` (among or after the pseudo-fields)."""
    return BASE[:at] + [(name, value)] + BASE[at:]


def swap(name: bytes, value: bytes) -> list:
    """BASE with the value of its field `name` changed, in its place."""
    return [(n, value if n == name else v) for n, v in BASE]


def drop(name: bytes) -> list:
    """BASE without its field `name`."""
    return [(n, v) for n, v in BASE if n != name]


MALFORMED = [
    Case("crlf-in-value", with_((b"x-a", b"1\r\nx-injected: 1")), "RFC 9113 §8.2.1: CR/LF in a value"),
    Case("lf-in-value", with_((b"x-a", b"1\nGET /admin HTTP/1.1")), "RFC 9113 §8.2.1"),
    Case("cr-in-value", with_((b"x-a", b"1\r")), "RFC 9113 §8.2.1"),
    Case("nul-in-value", with_((b"x-a", b"1\x00")), "RFC 9113 §8.2.1"),
    Case("ctl-in-value", with_((b"x-a", b"\x01")), "SPEC §5: control characters"),
    Case("leading-space", with_((b"x-a", b" 1")), "RFC 9113 §8.2.1: no leading whitespace"),
    Case("trailing-tab", with_((b"x-a", b"1\t")), "RFC 9113 §8.2.1: no trailing whitespace"),
    Case("crlf-in-path", swap(b":path", b"/ HTTP/1.1\r\nHost: x\r\n\r\nGET /"),
         "RFC 9113 §8.3.1: :path is a request target"),
    Case("space-in-path", swap(b":path", b"/a b"), "a space would split the request line"),
    Case("space-in-method", swap(b":method", b"GET /x"), "RFC 9110 §9.1: a method is a token"),
    Case("crlf-in-authority", swap(b":authority", b"a\r\nx-b: 1"), "RFC 9113 §8.2.1"),
    Case("uppercase-name", with_((b"X-A", b"1")), "RFC 9113 §8.2.1: uppercase names are malformed"),
    Case("colon-in-name", with_((b"x:a", b"1")), "RFC 9113 §8.2.1: not a token"),
    Case("space-in-name", with_((b"x a", b"1")), "RFC 9113 §8.2.1"),
    Case("empty-name", with_((b"", b"1")), "RFC 9113 §8.2.1"),
    Case("connection", with_((b"connection", b"close")), "RFC 9113 §8.2.2"),
    Case("keep-alive", with_((b"keep-alive", b"5")), "RFC 9113 §8.2.2"),
    Case("proxy-connection", with_((b"proxy-connection", b"x")), "RFC 9113 §8.2.2"),
    Case("transfer-encoding", with_((b"transfer-encoding", b"chunked")), "RFC 9113 §8.2.2: h2 has its own framing"),
    Case("upgrade", with_((b"upgrade", b"websocket")), "RFC 9113 §8.2.2"),
    Case("te-gzip", with_((b"te", b"gzip")), "RFC 9113 §8.2.2: TE other than trailers"),
    Case("pseudo-after-regular", insert(3, b"x-a", b"1"), "RFC 9113 §8.3: pseudo-fields first"),
    Case("pseudo-after-host", insert(3, b"host", b"a.example"), "RFC 9113 §8.3"),
    Case("repeated-path", with_((b":path", b"/admin")), "RFC 9113 §8.3: no repeats (and after regular)"),
    Case("repeated-path-in-pseudo", insert(3, b":path", b"/admin"), "RFC 9113 §8.3.1"),
    Case("unknown-pseudo", insert(2, b":foo", b"1"), "RFC 9113 §8.3: unknown pseudo-fields"),
    Case("status-in-request", insert(1, b":status", b"200"), "RFC 9113 §8.3.2 is for responses"),
    Case("protocol-pseudo", insert(1, b":protocol", b"websocket"), "RFC 8441 extended CONNECT is not offered"),
    Case("missing-method", drop(b":method"), "RFC 9113 §8.3.1"),
    Case("missing-path", drop(b":path"), "RFC 9113 §8.3.1"),
    Case("missing-scheme", drop(b":scheme"), "RFC 9113 §8.3.1"),
    Case("empty-path", swap(b":path", b""), "RFC 9113 §8.3.1"),
    Case("relative-path", swap(b":path", b"admin"), "RFC 9113 §8.3.1"),
    Case("asterisk-get", swap(b":path", b"*"), "RFC 9113 §8.3.1: * only for OPTIONS"),
    Case("odd-scheme", swap(b":scheme", b"ftp"), "an http(s) proxy"),
    Case("authority-vs-host", with_((b"host", b"b.example")), "RFC 9113 §8.3.1: they must agree"),
    Case("two-hosts", drop(b":authority") + [(b"host", b"a"), (b"host", b"b")], "RFC 9110 §7.2"),
    Case("cl-conflict", with_((b"content-length", b"1"), (b"content-length", b"2")), "RFC 9110 §8.6"),
    Case("connect-with-path", [(b":method", b"CONNECT"), (b":path", b"/"), (b":authority", b"a:443")],
         "RFC 9113 §8.5"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
def test_malformed_is_a_stream_error(case: Case) -> None:
    with pytest.raises(Malformed):
        check_request(case.fields, True)


def parse_one(head: bytes) -> RequestHead:
    """The one request the HTTP/1.1 parser reads in `head` (refused or more: the test fails)."""
    events, status = run(RequestParser(), [head])
    assert status is None
    (message,) = messages(events)
    return message[0]


def test_accepted_request_is_one_request_with_the_same_fields() -> None:
    fields = BASE + [(b"cookie", b"a=1"), (b"x-b", b"v\tw"), (b"cookie", b"b=2"), (b"te", b"trailers"),
                     (b"accept", b"*/*")]
    req = check_request(fields, True)
    head = parse_one(req.head)
    assert head.method == b"GET" and head.path == b"/" and head.host == b"a.example"
    assert head.cookies() == {b"a": b"1", b"b": b"2"}  # RFC 9113 §8.2.3: crumbs joined
    assert head.header(b"te") is None and head.header(b"x-b") == b"v\tw"


def test_body_framing_is_ours() -> None:
    with_length = check_request(BASE + [(b"content-length", b"5")], False)
    assert parse_one(with_length.head).content_length == 5 and with_length.has_length
    chunked = check_request(BASE, False)  # a body without content-length goes chunked
    assert parse_one(chunked.head).header(b"transfer-encoding") == b"chunked" and chunked.body
    bare = check_request(BASE, True)
    assert parse_one(bare.head).header(b"transfer-encoding") is None and not bare.body


def test_connect_is_refused_by_the_http1_rules() -> None:
    req = check_request([(b":method", b"CONNECT"), (b":authority", b"a:443")], True)
    with pytest.raises(ProtocolError) as exc:
        RequestParser().feed(req.head)
    assert exc.value.status == 405


def test_response_fields_drop_connection_specific() -> None:
    got = response_fields(200, [(b"connection", b"close, x-hop"), (b"x-hop", b"1"), (b"transfer-encoding", b"chunked"),
                                (b"keep-alive", b"5"), (b"content-type", b"text/plain"), (b"set-cookie", b"a=1")])
    assert got == [(b":status", b"200"), (b"content-type", b"text/plain"), (b"set-cookie", b"a=1")]


_octets = st.binary(min_size=0, max_size=12)
_names = st.one_of(st.sampled_from([b"x-a", b"host", b"cookie", b"content-length", b"te", b":path", b":method",
                                    b"connection", b"X-A", b"x_a"]), _octets)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_names, _octets), max_size=6), st.booleans())
def test_no_field_list_smuggles_a_second_request(extra: list, ended: bool) -> None:
    """Whatever the fields, the result is refused, or is one request head whose body
    framing is ours; never two requests, never bytes left over."""
    try:
        req = check_request(BASE + extra, ended)
    except Malformed:
        return
    parser = RequestParser()
    events, status = run(parser, [req.head])
    if status is not None and not events:
        return  # refused by the HTTP/1.1 rules (Host syntax, limits): a 4xx, never forwarded
    (message,) = messages(events)  # one request head
    head, body, trailers = message
    assert parser.buffered == 0
    assert body == b""
    if ended:  # no body: the message is complete and nothing else follows
        assert trailers is not None or head.content_length not in (None, 0)
