"""The one-read fast paths `RequestParser.whole` and `ResponseParser.whole` (issue 10 item
3): they accept only what `feed` accepts, give the same head, leave the parser as `feed`
would, and leave every doubtful or invalid read to `feed` (its verdict, its status)."""
from __future__ import annotations

import pytest

from buddylb.errors import ProtocolError
from buddylb.http.request import EndOfMessage, RequestHead, RequestParser
from buddylb.http.response import BodyChunk, ResponseHead, ResponseParser
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
