"""ResponseParser framing (RFC 9112 §6.3), bad framing -> 502, serialisation, canned errors."""
from __future__ import annotations

import pytest

from buddylb.errors import ProtocolError
from buddylb.http.request import RequestParser
from buddylb.http.response import (
    BodyChunk, EndOfMessage, Framing, ResponseHead, ResponseParser, error_response,
    serialize_response_head,
)


def feed_all(method: bytes, raw: bytes, split: int | None = None) -> tuple[list, ResponseParser]:
    parser = ResponseParser(method)
    if split is None:
        return parser.feed(raw), parser
    return parser.feed(raw[:split]) + parser.feed(raw[split:]), parser


def body(events: list) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, BodyChunk))


def test_content_length_response() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    for split in (None, 0, 10, len(raw) - 2):
        events, parser = feed_all(b"GET", raw, split)
        head = events[0]
        assert isinstance(head, ResponseHead)
        assert (head.status, head.reason, head.version) == (200, b"OK", (1, 1))
        assert head.framing is Framing.LENGTH and head.content_length == 5 and head.keep_alive
        assert body(events) == b"hello" and isinstance(events[-1], EndOfMessage)
        assert parser.complete and not parser.must_close


def test_chunked_response_with_trailers() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    for split in range(len(raw)):
        events, parser = feed_all(b"GET", raw, split)
        assert events[0].framing is Framing.CHUNKED and body(events) == b"wikipedia"
        assert events[-1] == EndOfMessage([(b"x-t", b"1")]) and parser.complete


def test_close_delimited_response() -> None:
    parser = ResponseParser(b"GET")
    events = parser.feed(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ")
    events += parser.feed(b"bytes")
    assert events[0].framing is Framing.CLOSE and not events[0].keep_alive and parser.must_close
    assert not parser.complete
    assert parser.feed_eof() == [EndOfMessage()]
    assert body(events) == b"some bytes" and parser.complete


@pytest.mark.parametrize("method, status", [(b"HEAD", 200), (b"GET", 204), (b"GET", 304), (b"HEAD", 404)])
def test_responses_without_body(method: bytes, status: int) -> None:
    raw = b"HTTP/1.1 %d X\r\nContent-Length: 1234\r\n\r\n" % status
    events, parser = feed_all(method, raw)
    assert [type(e) for e in events] == [ResponseHead, EndOfMessage]
    assert events[0].framing is Framing.NONE and events[0].content_length == 1234
    assert parser.complete and not parser.must_close


def test_head_response_with_chunked_announcement_has_no_body() -> None:
    events, parser = feed_all(b"HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert [type(e) for e in events] == [ResponseHead, EndOfMessage] and parser.complete


def test_informational_before_final() -> None:
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
           b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    for split in (None, 5, 30, 60):
        events, parser = feed_all(b"POST", raw, split)
        heads = [e for e in events if isinstance(e, ResponseHead)]
        assert [h.status for h in heads] == [100, 103, 201]
        assert heads[0].informational and not heads[2].informational
        assert body(events) == b"ok" and parser.complete
        assert sum(isinstance(e, EndOfMessage) for e in events) == 1


def test_connection_close_and_http10_mark_must_close() -> None:
    _, parser = feed_all(b"GET", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert parser.complete and parser.must_close
    _, parser = feed_all(b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert parser.must_close
    _, parser = feed_all(b"GET", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert not parser.must_close


def test_bytes_after_the_response_forbid_reuse() -> None:
    events, parser = feed_all(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n")
    assert body(events) == b"x" and parser.complete and parser.must_close


def test_reason_phrase_optional() -> None:
    events, _ = feed_all(b"GET", b"HTTP/1.1 204\r\n\r\n")
    assert events[0].status == 204 and events[0].reason == b""
    events, _ = feed_all(b"GET", b"HTTP/1.1 204 \r\n\r\n")
    assert events[0].reason == b""


BAD = [
    ("cl-te", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("cl-differ", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    ("cl-sign", b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n"),
    ("te-gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ("te-gzip-chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    ("te-http10", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("bad-chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("chunk-no-crlf", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n"),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
    ("space-colon", b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
    ("version", b"HTTP/2.0 200 OK\r\n\r\n"),
    ("status-short", b"HTTP/1.1 20 OK\r\n\r\n"),
    ("status-range", b"HTTP/1.1 999 Odd\r\n\r\n"),
    ("not-http", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    ("switching", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
    ("huge-line", b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 9000),
    ("too-many-1xx", b"HTTP/1.1 100 Continue\r\n\r\n" * 11),
]


@pytest.mark.parametrize("raw", [raw for _, raw in BAD], ids=[name for name, _ in BAD])
def test_bad_framing_is_502_and_never_reused(raw: bytes) -> None:
    parser = ResponseParser(b"GET")
    with pytest.raises(ProtocolError) as exc:
        parser.feed(raw)
    assert exc.value.status == 502 and parser.must_close
    with pytest.raises(ProtocolError):
        parser.feed(b"")


@pytest.mark.parametrize("raw", [
    b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
])
def test_eof_before_the_end_is_a_truncation(raw: bytes) -> None:
    parser = ResponseParser(b"GET")
    parser.feed(raw)
    with pytest.raises(ProtocolError) as exc:
        parser.feed_eof()
    assert exc.value.status == 502 and parser.must_close and not parser.complete


def test_serialize_drops_hop_by_hop_and_adds_headers() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\n"
           b"X-Internal: 1\r\nTransfer-Encoding: chunked\r\nSet-Cookie: app=1\r\n\r\n")
    head = ResponseParser(b"GET").feed(raw)[0]
    out = serialize_response_head(head, [(b"set-cookie", b"BLB=tok; Path=/; HttpOnly")])
    assert out == (b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nset-cookie: BLB=tok; Path=/; HttpOnly\r\n"
                   b"transfer-encoding: chunked\r\n\r\n")
    as_close = serialize_response_head(head, [(b"connection", b"close")], framing=Framing.CLOSE)
    assert as_close == b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nconnection: close\r\n\r\n"


def test_serialize_keeps_content_length_of_head_and_304_only() -> None:
    for method, status, expect in ((b"HEAD", 200, True), (b"GET", 304, True), (b"GET", 204, False)):
        head = ResponseParser(method).feed(b"HTTP/1.1 %d X\r\nContent-Length: 42\r\n\r\n" % status)[0]
        assert (b"content-length: 42\r\n" in serialize_response_head(head)) is expect
    head = ResponseParser(b"GET").feed(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n")[0]
    assert serialize_response_head(head).startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n")


@pytest.mark.parametrize("status", [400, 405, 408, 414, 431, 501, 502, 503, 504, 505])
def test_error_responses_are_complete_and_close(status: int) -> None:
    raw = error_response(status)
    events, parser = feed_all(b"GET", raw)
    head = events[0]
    assert head.status == status and not head.keep_alive and parser.complete
    assert len(body(events)) == head.content_length > 0
    assert (b"allow: " in raw) is (status == 405)
    assert b"connection: close" not in error_response(status, close=False)


def test_parsers_agree_on_chunked_relay() -> None:
    """A chunked request body re-chunked by encode_chunk parses back identically."""
    from buddylb.http.request import LAST_CHUNK, encode_chunk, serialize_request_head
    head = RequestParser().feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")[0]
    wire = serialize_request_head(head) + encode_chunk(b"abc") + LAST_CHUNK
    events = RequestParser().feed(wire)
    assert body(events) == b"abc" and isinstance(events[-1], EndOfMessage)
