"""The one-read fast paths `RequestParser.whole` and `ResponseParser.whole` (issue 10 item
3): they accept only what `feed` accepts, give the same head, leave the parser as `feed`
would, and leave every doubtful or invalid read to `feed` (its verdict, its status)."""
from __future__ import annotations

import pytest

from buddylb.errors import ProtocolError
from buddylb.http.request import EndOfMessage, RequestHead, RequestParser
from buddylb.http.response import BodyChunk, ResponseHead, ResponseParser, parse_response_head
from tests.http.test_response import BAD as BAD_RESPONSES
from tests.http.test_smuggling_corpus import CORPUS

GOOD_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nCookie: a=1; b=2\r\nConnection: keep-alive\r\n\r\n",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://b.example/p HTTP/1.1\r\nHost: a.example\r\nX_Under: 1\r\n\r\n",
]


def test_every_corpus_case_is_left_to_feed_which_refuses_it() -> None:
    for case in CORPUS:
        parser = RequestParser()
        assert parser.whole(case.raw) is None, case.id
        with pytest.raises(ProtocolError) as exc:
            parser.feed(case.raw)
            raise ProtocolError(0, "")  # an error deferred after a complete message is not this case
        assert exc.value.status == case.status, case.id


@pytest.mark.parametrize("raw", GOOD_REQUESTS)
def test_a_whole_bodiless_request_gives_the_head_feed_gives(raw: bytes) -> None:
    fast, slow = RequestParser(), RequestParser()
    head = fast.whole(raw)
    events = slow.feed(raw)
    assert isinstance(head, RequestHead) and len(events) == 2 and isinstance(events[1], EndOfMessage)
    assert head == events[0] and head._lines == events[0]._lines and head._section == events[0]._section
    assert fast.idle and slow.idle
    assert fast.feed(raw)[0] == head  # the parser goes on as if `feed` had read it


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",  # pipelined
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",  # a body
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # incomplete
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # a leading empty line: the line reader's case
])
def test_anything_but_one_whole_bodiless_request_is_left_to_feed(raw: bytes) -> None:
    assert RequestParser().whole(raw) is None


def test_a_parser_in_the_middle_of_a_head_is_not_bypassed() -> None:
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\nHo") == []
    assert parser.whole(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") is None


OK = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"


@pytest.mark.parametrize("method, raw, body", [
    (b"GET", OK, b"hello"),
    (b"GET", b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", b""),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", b""),
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""),
    (b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"hi"),
])
def test_a_whole_response_gives_what_feed_gives(method: bytes, raw: bytes, body: bytes) -> None:
    fast, slow = ResponseParser(method), ResponseParser(method)
    found = fast.whole(raw)
    events = slow.feed(raw)
    assert found is not None
    head, got = found
    assert isinstance(head, ResponseHead) and head == events[0] and head._lines == events[0]._lines
    assert got == body == b"".join(e.data for e in events if isinstance(e, BodyChunk))
    assert (fast.complete, fast.must_close) == (slow.complete, slow.must_close) == (True, raw.startswith(b"HTTP/1.0"))


@pytest.mark.parametrize("raw", [
    OK[:-1],  # the body not all there
    OK + b"x",  # more than the response: `feed` marks the connection must_close
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nuntil close",
])
def test_anything_but_one_whole_response_is_left_to_feed(raw: bytes) -> None:
    parser = ResponseParser(b"GET")
    assert parser.whole(raw) is None
    assert not parser.complete and not parser.must_close


@pytest.mark.parametrize("raw", [raw for _, raw in BAD_RESPONSES], ids=[name for name, _ in BAD_RESPONSES])
def test_bad_responses_are_left_to_feed_which_refuses_them(raw: bytes) -> None:
    parser = ResponseParser(b"GET")
    assert parser.whole(raw) is None
    with pytest.raises(ProtocolError) as exc:
        parser.feed(raw)
    assert exc.value.status == 502


# -- the verdicts remembered by exact bytes ----------------------------------------------
def test_a_remembered_request_head_is_only_ever_a_valid_one() -> None:
    from buddylb.http import request
    raw = GOOD_REQUESTS[1]
    first = RequestParser().whole(raw)
    assert request._WHOLE[raw] is first and RequestParser().whole(raw) is first
    for case in CORPUS:  # refused bytes are never remembered, however often they come
        for _ in range(2):
            assert RequestParser().whole(case.raw) is None
        assert case.raw not in request._WHOLE
    other = raw.replace(b"/x?y=1", b"/x?y=2")  # one byte differs: parsed on its own
    assert RequestParser().whole(other).path == b"/x?y=2"


def test_the_request_memory_is_bounded(monkeypatch) -> None:
    from buddylb.http import request
    monkeypatch.setattr(request, "_WHOLE", {})
    for i in range(request._WHOLE_MAX + 10):
        assert RequestParser().whole(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i) is not None
    assert 0 < len(request._WHOLE) <= request._WHOLE_MAX
    big = b"GET /" + b"a" * request._WHOLE_BYTES + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert RequestParser().whole(big) is not None and big not in request._WHOLE


def test_a_remembered_forwarded_head_follows_its_arguments() -> None:
    from buddylb.http.request import serialize_request_head
    head = RequestParser().whole(b"GET / HTTP/1.1\r\nHost: a\r\nX_Y: 1\r\nConnection: te\r\nTE: x\r\n\r\n")
    xff = ((b"x-forwarded-for", b"10.0.0.1"),)
    one = serialize_request_head(head, xff)
    assert serialize_request_head(head, xff) is one  # remembered
    two = serialize_request_head(head, ((b"x-forwarded-for", b"10.0.0.2"),))
    assert b"10.0.0.2" in two and b"10.0.0.1" not in two
    kept = serialize_request_head(head, xff, keep_underscores=True)
    assert b"X_Y: 1" in kept and b"X_Y" not in one
    raw = serialize_request_head(head, xff, drop_hop_by_hop=False)
    assert b"TE: x" in raw and b"TE: x" not in one
    assert serialize_request_head(head, xff) == one


def test_a_remembered_response_head_is_only_ever_a_valid_one() -> None:
    from buddylb.http import response
    head, _ = ResponseParser(b"GET").whole(OK)
    again, _ = ResponseParser(b"GET").whole(OK)
    assert again is head  # the same bytes: the verdict remembered
    head_for_head, body = ResponseParser(b"HEAD").whole(OK[:-5])
    assert head_for_head is not head and head_for_head.framing.name == "NONE" and body == b""
    refused_heads = 0
    for _, raw in BAD_RESPONSES:
        for _ in range(2):
            assert ResponseParser(b"GET").whole(raw) is None
        try:
            parse_response_head(raw)
        except ProtocolError:  # the head itself is refused (not only its body): never remembered
            refused_heads += 1
            assert all(raw[:raw.find(b"\r\n\r\n") + 4] not in table for table in response._WHOLE.values())
    assert refused_heads >= 12
    short = ResponseParser(b"GET")
    assert short.whole(OK[:-1]) is None and not short.complete  # a remembered head, the body not all there


def test_the_response_memory_is_bounded(monkeypatch) -> None:
    from buddylb.http import response
    monkeypatch.setattr(response, "_WHOLE", {})
    for i in range(response._WHOLE_MAX + 10):
        assert ResponseParser(b"GET").whole(b"HTTP/1.1 200 OK\r\nX-N: %d\r\nContent-Length: 0\r\n\r\n" % i)
    for i in range(response._WHOLE_METHODS + 5):  # methods come from clients
        assert ResponseParser(b"M%d" % i).whole(OK)
    assert len(response._WHOLE) <= response._WHOLE_METHODS
    assert all(len(t) <= response._WHOLE_MAX for t in response._WHOLE.values())


def test_a_remembered_response_wire_is_used_only_without_extras() -> None:
    from buddylb.http.response import Framing, serialize_response_head
    head, _ = ResponseParser(b"GET").whole(OK)
    plain = serialize_response_head(head)
    assert serialize_response_head(head) is plain and b"connection" not in plain.lower()
    with_cookie = serialize_response_head(head, [(b"set-cookie", b"a=1")])
    assert b"set-cookie: a=1\r\n" in with_cookie
    closing = serialize_response_head(head, framing=Framing.CLOSE)
    assert b"content-length" not in closing
    assert serialize_response_head(head) is plain


def test_a_response_to_connection_close_is_remembered_apart_and_only_for_that_lone_extra() -> None:
    """Every response to a `Connection: close` client carries `connection: close` alone:
    its head is remembered beside the plain one, byte for byte what it would be rebuilt as."""
    from buddylb.http import response
    from buddylb.http.response import Framing, serialize_response_head
    close = (b"connection", b"close")
    head, _ = ResponseParser(b"GET").whole(OK)
    first = serialize_response_head(head, [close])
    assert first == b"HTTP/1.1 200 OK\r\nServer: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\n"
    assert serialize_response_head(head, [close]) is first  # remembered
    fresh = ResponseParser(b"GET").feed(OK)[0]  # a head not remembered: rebuilt from its lines
    assert isinstance(fresh, ResponseHead) and fresh is not head
    assert serialize_response_head(fresh, [close]) == first
    plain = serialize_response_head(head)
    assert plain != first and serialize_response_head(head) is plain  # each memo keeps its own form
    assert serialize_response_head(head, [close]) is first
    both = serialize_response_head(head, [(b"set-cookie", b"a=1"), close])  # not the lone extra: rebuilt
    assert b"set-cookie: a=1\r\nconnection: close\r\n" in both and both is not serialize_response_head(head, [close])
    assert b"content-length" not in serialize_response_head(head, [close], framing=Framing.CLOSE)
    assert serialize_response_head(head, [close]) is first
    assert response.serialize_response_head(head, [(b"connection", b"keep-alive")]) != first
