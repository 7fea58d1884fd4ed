"""Hypothesis fuzzing: whatever bytes arrive, in whatever pieces, the parsers give events
or ProtocolError, never another exception; what they accept re-serialises and parses back."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buddylb.errors import ProtocolError
from buddylb.http.request import BodyChunk, RequestHead, RequestParser, serialize_request_head
from buddylb.http.response import ResponseParser

from tests.http.reparse import assert_same_verdict
from tests.http.test_smuggling_corpus import CORPUS

VALID = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p?q HTTP/1.1\r\nHost: a:80\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=v\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"\r\nGET http://h/x HTTP/1.0\r\nConnection: keep-alive\r\nCookie: a=b\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: [::1]\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n",
]
SEEDS = VALID + [case.raw for case in CORPUS if len(case.raw) < 2048]
INTERESTING = b"\r\n\x00 \t:;,=\"0aF-\x7f\x80\xff/?#@"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        byte = draw(st.sampled_from(INTERESTING))
        if kind == "insert":
            data[at:at] = bytes([byte])
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        elif kind == "replace" and at < len(data):
            data[at] = byte
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 40))]
    return bytes(data)


def pieces_of(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(c % (len(data) + 1) for c in cuts)
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def run_request(pieces: list[bytes]) -> list:
    parser, events = RequestParser(), []
    try:
        for piece in pieces:
            events += parser.feed(piece)
        parser.feed_eof()
    except ProtocolError as exc:
        assert 400 <= exc.status <= 599
    return events


def check_accepted(events: list) -> None:
    for event in events:
        if isinstance(event, RequestHead):  # what we accept, we can forward and re-read
            again = RequestParser().feed(serialize_request_head(event))[0]
            assert isinstance(again, RequestHead)
            assert (again.method, again.path, again.host, again.framing, again.content_length) == (
                event.method, event.path, event.host, event.framing, event.content_length)


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    check_accepted(run_request(pieces_of(data, cuts)))


@FUZZ
@given(prefix=st.sampled_from([b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\nHost: a\r\n"]),
       data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_random_bytes_after_a_request_line(prefix: bytes, data: bytes, cuts: list[int]) -> None:
    check_accepted(run_request(pieces_of(prefix + data, cuts)))


@FUZZ
@given(data=mutated(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_mutated_corpus(data: bytes, cuts: list[int]) -> None:
    pieces = pieces_of(data, cuts)
    check_accepted(run_request(pieces))
    assert_same_verdict(data, pieces)  # the verdict depends on the bytes, not the cuts
    assert_same_verdict(data, [data[i:i + 1] for i in range(len(data))])


@FUZZ
@given(method=st.sampled_from([b"GET", b"HEAD", b"POST"]),
       data=st.one_of(st.binary(max_size=400), mutated().map(
           lambda raw: raw.replace(b"GET / HTTP/1.1", b"HTTP/1.1 200 OK", 1))),
       cuts=st.lists(st.integers(0, 10_000), max_size=8), eof=st.booleans())
def test_response_parser_never_crashes(method: bytes, data: bytes, cuts: list[int], eof: bool) -> None:
    parser = ResponseParser(method)
    try:
        for piece in pieces_of(data, cuts):
            for event in parser.feed(piece):
                assert not isinstance(event, BodyChunk) or event.data
        if eof:
            parser.feed_eof()
    except ProtocolError as exc:
        assert exc.status == 502 and parser.must_close
