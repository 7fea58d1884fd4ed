"""RequestParser on valid traffic, and the head re-serialised for forwarding."""
from __future__ import annotations

import pytest

from buddylb.errors import ProtocolError
from buddylb.http import limits
from buddylb.http.request import (
    LAST_CHUNK, BodyChunk, EndOfMessage, Framing, RequestHead, RequestParser, encode_chunk,
    encode_last_chunk, serialize_request_head,
)

H = b"Host: shop.example\r\n"


def parse(raw: bytes) -> list:
    return RequestParser().feed(raw)


def only_head(raw: bytes) -> RequestHead:
    events = parse(raw)
    assert isinstance(events[0], RequestHead)
    return events[0]


def test_simple_get() -> None:
    events = parse(b"GET /cart?id=7 HTTP/1.1\r\n" + H + b"Accept: */*\r\n\r\n")
    head, end = events
    assert isinstance(end, EndOfMessage) and end.trailers == []
    assert head.method == b"GET" and head.target == b"/cart?id=7" and head.path == b"/cart?id=7"
    assert head.version == (1, 1) and head.host == b"shop.example"
    assert head.headers == [(b"host", b"shop.example"), (b"accept", b"*/*")]
    assert head.framing is Framing.NONE and head.content_length is None
    assert head.keep_alive and not head.expect_continue


def test_post_with_content_length_streams_the_body() -> None:
    parser = RequestParser()
    head, first = parser.feed(b"POST /pay HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nhello")
    assert head.framing is Framing.LENGTH and head.content_length == 10
    assert first == BodyChunk(b"hello")
    assert parser.feed(b"world") == [BodyChunk(b"world"), EndOfMessage()]
    assert parser.idle


def test_content_length_zero_and_identical_duplicates_fold() -> None:
    head, end = parse(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n")
    assert head.content_length == 0 and isinstance(end, EndOfMessage)
    head = only_head(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc")
    assert head.framing is Framing.LENGTH and head.content_length == 3
    assert only_head(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 007\r\n\r\n1234567").content_length == 7


def test_chunked_with_extensions_and_trailers() -> None:
    ext = b"a" * (limits.MAX_CHUNK_EXTENSION - 2)  # " ;" + ext is exactly the limit
    raw = (b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\nTrailer: X-Sum\r\n\r\n"
           b"5;name=value ; q=\"a \\\" b\"\r\nhello\r\n"
           b"6 ;" + ext + b"\r\n world\r\n"
           b"000\r\nX-Sum: 42\r\nX-Other:  z \r\n\r\n")
    events = parse(raw)
    head = events[0]
    assert head.framing is Framing.CHUNKED and head.content_length is None
    assert b"".join(e.data for e in events if isinstance(e, BodyChunk)) == b"hello world"
    assert events[-1] == EndOfMessage([(b"x-sum", b"42"), (b"x-other", b"z")])


def test_chunked_split_everywhere_gives_the_same_payload() -> None:
    raw = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    for cut in range(len(raw) + 1):
        parser = RequestParser()
        events = parser.feed(raw[:cut]) + parser.feed(raw[cut:])
        assert b"".join(e.data for e in events if isinstance(e, BodyChunk)) == b"abcde"
        assert isinstance(events[-1], EndOfMessage) and parser.idle


def test_pipelined_requests() -> None:
    raw = (b"GET /1 HTTP/1.1\r\n" + H + b"\r\n"
           b"POST /2 HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nok"
           b"\r\n"  # one empty line before a request line is ignored (RFC 9112 §2.2)
           b"GET /3 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET /4")
    parser = RequestParser()
    events = parser.feed(raw)
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert [h.path for h in heads] == [b"/1", b"/2", b"/3"]
    assert not heads[2].keep_alive
    assert BodyChunk(b"ok") in events and isinstance(events[-1], EndOfMessage)
    assert parser.buffered == len(b"GET /4") and not parser.idle
    with pytest.raises(ProtocolError) as exc:
        parser.feed_eof()
    assert exc.value.status == 400


def test_leading_empty_line_is_ignored_once() -> None:
    assert only_head(b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n").path == b"/"


@pytest.mark.parametrize("version, connection, keep_alive", [
    (b"1.1", None, True),
    (b"1.1", b"close", False),
    (b"1.1", b"Keep-Alive", True),
    (b"1.1", b"keep-alive, close", False),
    (b"1.0", None, False),
    (b"1.0", b"keep-alive", True),
    (b"1.0", b"Keep-Alive, x-foo", True),
    (b"1.0", b"close", False),
])
def test_keep_alive_rules(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    raw = b"GET / HTTP/" + version + b"\r\n" + H
    if connection is not None:
        raw += b"Connection: " + connection + b"\r\n"
    head = only_head(raw + b"\r\n")
    assert head.keep_alive is keep_alive
    assert head.version == (int(version[:1]), int(version[2:]))


def test_http10_needs_no_host() -> None:
    head = only_head(b"GET / HTTP/1.0\r\n\r\n")
    assert head.host == b"" and head.version == (1, 0)


def test_expect_continue() -> None:
    assert only_head(b"PUT / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n").expect_continue
    assert not only_head(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue


def test_absolute_form_authority_replaces_host() -> None:
    head = only_head(b"GET http://Other.example:8080?q=1 HTTP/1.1\r\n" + H + b"\r\n")
    assert head.host == b"Other.example:8080" and head.path == b"/?q=1"
    head = only_head(b"GET https://[::1]:443/a/b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.host == b"[::1]:443" and head.path == b"/a/b" and head.target == b"https://[::1]:443/a/b"


def test_options_asterisk_and_extension_methods() -> None:
    assert only_head(b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n").path == b"*"
    assert only_head(b"PROPFIND /dav HTTP/1.1\r\n" + H + b"\r\n").method == b"PROPFIND"


def test_field_values_are_trimmed_and_obs_text_allowed() -> None:
    head = only_head(b"GET / HTTP/1.1\r\n" + H + b"X-A:\t  caf\xc3\xa9 au lait \t\r\nX-Empty:\r\n\r\n")
    assert head.header(b"X-A") == b"caf\xc3\xa9 au lait" and head.header(b"x-empty") == b""


def test_header_helper_joins_repeated_fields() -> None:
    head = only_head(b"GET / HTTP/1.1\r\n" + H + b"X-Tag: a\r\nx-tag: b\r\n\r\n")
    assert head.header(b"x-tag") == b"a, b"
    assert head.header(b"X-Missing") is None


def test_cookies_parsed_lazily_first_wins() -> None:
    head = only_head(b"GET / HTTP/1.1\r\n" + H +
                     b"Cookie: SRV=abc; lang=en\r\nCookie: SRV=later;  theme=\"dark\" ; flag; =x\r\n\r\n")
    assert head._cookies is None
    jar = head.cookies()
    assert jar == {b"SRV": b"abc", b"lang": b"en", b"theme": b"\"dark\""}
    assert head.cookies() is jar
    assert only_head(b"GET / HTTP/1.1\r\n" + H + b"\r\n").cookies() == {}


def test_limits_exactly_at_the_edge_pass() -> None:
    line = b"GET /" + b"a" * (limits.MAX_REQUEST_LINE - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == limits.MAX_REQUEST_LINE
    assert only_head(line + b"\r\n" + H + b"\r\n").method == b"GET"
    field = b"X-A: " + b"a" * (limits.MAX_HEADER_LINE - 5)
    assert only_head(b"GET / HTTP/1.1\r\n" + H + field + b"\r\n\r\n").header(b"x-a")
    many = b"".join(b"X-%d: a\r\n" % i for i in range(limits.MAX_HEADER_FIELDS - 1))
    assert len(only_head(b"GET / HTTP/1.1\r\n" + H + many + b"\r\n").headers) == limits.MAX_HEADER_FIELDS


def test_eof_between_messages_is_clean() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert parser.feed_eof() == []


def test_once_failed_always_failed() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n")
    with pytest.raises(ProtocolError):
        parser.feed(b"GET / HTTP/1.1\r\n" + H + b"\r\n")


# --- forwarding ------------------------------------------------------------------------

def test_serialize_drops_hop_by_hop_and_client_forwarded_fields() -> None:
    head = only_head(
        b"GET http://shop.example/a?b HTTP/1.0\r\nHost: ignored.example\r\n"
        b"Connection: keep-alive, X-Secret, Upgrade\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\n"
        b"Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n"
        b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nAccept: text/html\r\n"
        b"Cookie: a=1\r\n\r\n")
    out = serialize_request_head(head, [(b"x-forwarded-for", b"127.0.0.5"), (b"x-forwarded-proto", b"http")])
    # validated lines are kept as received (names in the client's case); ours are lowercase
    assert out == (b"GET /a?b HTTP/1.1\r\nhost: shop.example\r\nAccept: text/html\r\nCookie: a=1\r\n"
                   b"x-forwarded-for: 127.0.0.5\r\nx-forwarded-proto: http\r\n\r\n")


def test_serialize_reemits_framing_as_parsed() -> None:
    head = only_head(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 003, 003\r\n\r\nabc")
    assert serialize_request_head(head).endswith(b"content-length: 3\r\n\r\n")
    head = only_head(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: CHUNKED\r\n\r\n")
    out = serialize_request_head(head)
    assert out.endswith(b"transfer-encoding: chunked\r\n\r\n") and out.count(b"chunked") == 1
    head = only_head(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert b"content-length" not in serialize_request_head(head)


def test_serialize_keeps_hop_by_hop_on_request_and_host_override() -> None:
    head = only_head(b"GET / HTTP/1.1\r\n" + H + b"Connection: X-A\r\nX-A: 1\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n")
    out = serialize_request_head(head, [(b"host", b"10.0.0.1:8080")], drop_hop_by_hop=False)
    assert out == (b"GET / HTTP/1.1\r\nConnection: X-A\r\nX-A: 1\r\nhost: 10.0.0.1:8080\r\n\r\n")


def test_serialized_head_parses_back_to_the_same_request() -> None:
    raw = b"PATCH /x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
    head = only_head(raw)
    again = only_head(serialize_request_head(head))
    assert (again.method, again.path, again.host, again.framing) == (head.method, head.path, head.host, head.framing)


def test_extra_headers_cannot_inject_lines() -> None:
    head = only_head(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    with pytest.raises(ValueError):
        serialize_request_head(head, [(b"set-cookie", b"a\r\nX-Evil: 1")])
    with pytest.raises(ValueError):
        serialize_request_head(head, [(b"bad name", b"x")])


def test_chunk_encoding_round_trips() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert encode_chunk(b"") == b""
    assert LAST_CHUNK == encode_last_chunk() == b"0\r\n\r\n"
    trailers = [(b"x-sum", b"1"), (b"content-length", b"9"), (b"trailer", b"x")]
    assert encode_last_chunk(trailers) == b"0\r\nx-sum: 1\r\n\r\n"
    body = encode_chunk(b"abc") + encode_chunk(b"de") + encode_last_chunk([(b"x-sum", b"1")])
    events = parse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert events[1:] == [BodyChunk(b"abc"), BodyChunk(b"de"), EndOfMessage([(b"x-sum", b"1")])]


def test_public_surface_is_pinned() -> None:
    """The L7 proxy is written against these names; change them on purpose only."""
    from buddylb.http import request, response
    assert set(request.__all__) == {
        "BodyChunk", "EndOfMessage", "Framing", "HOP_BY_HOP", "LAST_CHUNK", "PROXY_OWNED",
        "RequestEvent", "RequestHead", "RequestParser", "encode_chunk", "encode_last_chunk",
        "head_size", "parse_request_head", "serialize_request_head"}
    assert set(response.__all__) == {
        "BodyChunk", "EndOfMessage", "Framing", "ResponseEvent", "ResponseHead",
        "ResponseParser", "error_response", "parse_response_head", "serialize_response_head"}
    assert response.BodyChunk is request.BodyChunk and response.EndOfMessage is request.EndOfMessage


def test_head_size_is_the_bytes_received() -> None:
    """Byte counters count heads (issue 14): the size of a head written without extra whitespace."""
    from buddylb.http.request import head_size

    raw = b"GET /cart?id=7 HTTP/1.1\r\nHost: shop\r\nCookie: a=1; b=2\r\nX-Empty: \r\n\r\n"
    (head,) = [e for e in parse(raw) if isinstance(e, RequestHead)]
    assert head_size(head) == len(raw)


def test_http10_without_host_is_forwarded_as_http10_without_host() -> None:
    """Hypothesis found it: an HTTP/1.0 request without Host was forwarded as HTTP/1.1 with
    an empty Host, a head our own parser (and nginx) refuses with 400."""
    from buddylb.http.request import serialize_request_head

    raw = b"POST / HTTP/1.0\r\nH:ost: a.example\r\nContent-Length: 0\r\n\r\n"
    (head,) = [e for e in parse(raw) if isinstance(e, RequestHead)]
    out = serialize_request_head(head)
    assert out.startswith(b"POST / HTTP/1.0\r\n") and b"\r\nhost:" not in out.lower()
    (again,) = [e for e in parse(out) if isinstance(e, RequestHead)]
    assert again.method == b"POST" and again.host == b""
