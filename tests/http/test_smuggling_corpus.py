"""A corpus of malformed and smuggling requests (RFC 9112, SPEC §5): each is refused
with its status, whole, byte by byte and in random splits, with the same verdict."""
from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buddylb.errors import ProtocolError
from buddylb.http.request import EndOfMessage, RequestHead, RequestParser

from tests.http.reparse import assert_same_verdict, complete, messages, run


class Case(NamedTuple):
    id: str
    raw: bytes
    status: int
    rule: str


H = b"Host: a.example\r\n"
POST = b"POST / HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def get(headers: bytes = H, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\n" + headers + b"\r\n"


CORPUS: list[Case] = [
    # --- framing: Content-Length and Transfer-Encoding ---
    Case("cl-te", POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         "RFC 9112 §6.1: CL with TE is a smuggling sign; SPEC §5 refuses it"),
    Case("te-cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400,
         "RFC 9112 §6.1: CL with TE"),
    Case("te-upper-cl", POST + b"transfer-encoding: CHUNKED\r\ncontent-length: 0\r\n\r\n", 400,
         "RFC 9112 §6.1: CL with TE, names and value case-insensitive"),
    Case("cl-cl-differ", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
         "RFC 9110 §8.6: differing Content-Length values"),
    Case("cl-list-differ", POST + b"Content-Length: 5, 6\r\n\r\nhello!", 400,
         "RFC 9110 §8.6: a list of differing values"),
    Case("cl-same-number-other-text", POST + b"Content-Length: 3\r\nContent-Length: 003\r\n\r\nabc", 400,
         "RFC 9110 §8.6: only textually identical duplicates are folded (our choice)"),
    Case("cl-plus", POST + b"Content-Length: +5\r\n\r\nhello", 400, "RFC 9110 §8.6: 1*DIGIT, no sign"),
    Case("cl-minus", POST + b"Content-Length: -5\r\n\r\n", 400, "RFC 9110 §8.6: 1*DIGIT, no sign"),
    Case("cl-inner-space", POST + b"Content-Length: 1 2\r\n\r\n", 400, "RFC 9110 §8.6: 1*DIGIT"),
    Case("cl-hex", POST + b"Content-Length: 0x5\r\n\r\nhello", 400, "RFC 9110 §8.6: decimal only"),
    Case("cl-empty", POST + b"Content-Length:\r\n\r\n", 400, "RFC 9110 §8.6: 1*DIGIT"),
    Case("cl-huge", POST + b"Content-Length: 1" + b"0" * 19 + b"\r\n\r\n", 400,
         "RFC 9110 §8.6: a length we cannot represent is malformed"),
    Case("te-chunked-identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n", 400,
         "RFC 9112 §6.3: chunked not final -> 400"),
    Case("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n", 400,
         "RFC 9112 §6.3: no final chunked -> 400"),
    Case("te-xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n", 400,
         "RFC 9112 §6.3: no final chunked; SPEC §5 exactly chunked"),
    Case("te-chunked-param", POST + b"Transfer-Encoding: chunked;q\r\n\r\n", 400,
         "RFC 9112 §7: chunked takes no parameters; malformed parameter"),
    Case("te-folded-line", b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + b"\r\n", 400,
         "RFC 9112 §2.2: whitespace before the first field line"),
    Case("te-vtab", POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n", 400,
         "RFC 9110 §5.5: CTL in a field value"),
    Case("te-http10", b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         "RFC 9112 §6.1: TE in HTTP/1.0 is faulty framing; SPEC §5"),
    Case("te-twice", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "RFC 9112 §6.1: chunked applied twice"),
    Case("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "RFC 9112 §6.1: a coding the server does not implement -> 501"),
    Case("te-space-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n", 400,
         "RFC 9112 §5.1: whitespace before the colon"),
    # --- head syntax ---
    Case("obs-fold", get(H + b"X-A: b\r\n c\r\n"), 400, "RFC 9112 §5.2: obs-fold"),
    Case("obs-fold-tab", get(H + b"X-A: b\r\n\tc\r\n"), 400, "RFC 9112 §5.2: obs-fold"),
    Case("bare-cr-value", get(H + b"X-A: b\rc\r\n"), 400, "RFC 9112 §2.2: bare CR"),
    Case("bare-cr-line-end", get(H + b"X-A: b\r\r\n"), 400, "RFC 9112 §2.2: bare CR"),
    Case("bare-lf-field", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\n\r\n", 400, "RFC 9112 §2.2: bare LF"),
    Case("bare-lf-request-line", b"GET / HTTP/1.1\n" + H + b"\r\n", 400, "RFC 9112 §2.2: bare LF"),
    Case("bare-lf-end", b"GET / HTTP/1.1\r\n" + H + b"\n", 400, "RFC 9112 §2.2: bare LF"),
    Case("bare-cr-request-line", get(line=b"GET /\r HTTP/1.1"), 400, "RFC 9112 §2.2: bare CR"),
    Case("nul-value", get(H + b"X-A: b\x00c\r\n"), 400, "RFC 9110 §5.5: NUL in a value"),
    Case("ctl-name", get(H + b"X\x01A: b\r\n"), 400, "RFC 9110 §5.1: field-name is a token"),
    Case("space-colon", get(b"Host : a.example\r\n"), 400, "RFC 9112 §5.1: whitespace before colon"),
    Case("tab-colon", get(H + b"X-A\t: b\r\n"), 400, "RFC 9112 §5.1: whitespace before colon"),
    Case("empty-name", get(H + b": b\r\n"), 400, "RFC 9110 §5.1: empty field name"),
    Case("no-colon", get(H + b"X-A b\r\n"), 400, "RFC 9112 §5: field-line needs a colon"),
    Case("two-leading-crlf", b"\r\n\r\n" + get(), 400, "RFC 9112 §2.2: only one empty line is skipped"),
    Case("leading-bare-lf", b"\n" + get(), 400, "RFC 9112 §2.2: bare LF"),
    Case("connection-junk", get(H + b"Connection: close, @x\r\n"), 400,
         "RFC 9110 §7.6.1: Connection is a list of tokens"),
    # --- request line ---
    Case("method-paren", get(line=b"GE(T / HTTP/1.1"), 400, "RFC 9110 §9.1: method is a token"),
    Case("method-nul", get(line=b"G\x00T / HTTP/1.1"), 400, "RFC 9110 §9.1: method is a token"),
    Case("method-empty", get(line=b" / HTTP/1.1"), 400, "RFC 9112 §3: method SP target"),
    Case("tab-separator", get(line=b"GET\t/ HTTP/1.1"), 400, "RFC 9112 §3: single SP separators"),
    Case("double-space", get(line=b"GET  / HTTP/1.1"), 400, "RFC 9112 §3: single SP separators"),
    Case("http-1.2", get(line=b"GET / HTTP/1.2"), 505, "SPEC §5: only HTTP/1.0 and HTTP/1.1"),
    Case("http-2.0", get(line=b"GET / HTTP/2.0"), 505, "SPEC §5: only HTTP/1.0 and HTTP/1.1"),
    Case("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "RFC 9113 §3.4 preface on HTTP/1.1"),
    Case("http-lowercase", get(line=b"GET / http/1.1"), 400, "RFC 9112 §2.3: HTTP-name is case-sensitive"),
    Case("http-11", get(line=b"GET / HTTP/11"), 400, "RFC 9112 §2.3: HTTP/DIGIT.DIGIT"),
    Case("http-09", b"GET /\r\n\r\n", 400, "RFC 9112 §3: HTTP/0.9 has no version"),
    Case("version-trailing-space", get(line=b"GET / HTTP/1.1 "), 400, "RFC 9112 §3: no trailing SP"),
    Case("target-space", get(line=b"GET /a b HTTP/1.1"), 400, "RFC 9112 §3.2: no SP in target"),
    Case("target-hash", get(line=b"GET /a#b HTTP/1.1"), 400, "RFC 9112 §3.2: no fragment in target"),
    Case("target-del", get(line=b"GET /a\x7fb HTTP/1.1"), 400, "RFC 3986: no CTL in target"),
    Case("target-nul", get(line=b"GET /a\x00 HTTP/1.1"), 400, "RFC 3986: no CTL in target"),
    Case("target-8bit", get(line=b"GET /\xff HTTP/1.1"), 400, "RFC 3986: no raw non-ASCII"),
    Case("target-relative", get(line=b"GET a/b HTTP/1.1"), 400, "RFC 9112 §3.2: not a request-target form"),
    Case("target-star-get", get(line=b"GET * HTTP/1.1"), 400, "RFC 9112 §3.2.4: * only for OPTIONS"),
    Case("target-authority-get", get(line=b"GET a.example:80 HTTP/1.1"), 400,
         "RFC 9112 §3.2.3: authority-form only for CONNECT"),
    Case("connect", get(line=b"CONNECT a.example:443 HTTP/1.1"), 405,
         "a reverse proxy does not open tunnels (RFC 9110 §9.3.6)"),
    Case("absolute-userinfo", get(line=b"GET http://u@a.example/ HTTP/1.1"), 400,
         "RFC 9110 §4.2.4: userinfo in an http URI"),
    Case("absolute-ftp", get(line=b"GET ftp://a.example/ HTTP/1.1"), 400, "RFC 9112 §3.2.2: http(s) only"),
    Case("absolute-no-host", get(line=b"GET http:///x HTTP/1.1"), 400, "RFC 9110 §4.2.1: empty host"),
    # --- Host ---
    Case("host-missing", b"GET / HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2: Host is required in 1.1"),
    Case("host-missing-absolute", b"GET http://a.example/ HTTP/1.1\r\n\r\n", 400,
         "RFC 9112 §3.2: Host is required in 1.1, even with absolute-form"),
    Case("host-twice", get(H + H), 400, "RFC 9112 §3.2: more than one Host"),
    Case("host-twice-http10", b"GET / HTTP/1.0\r\n" + H + H + b"\r\n", 400, "RFC 9112 §3.2"),
    Case("host-space", get(b"Host: a example\r\n"), 400, "RFC 9110 §7.2: Host = uri-host [:port]"),
    Case("host-at", get(b"Host: u@a.example\r\n"), 400, "RFC 9110 §7.2: no userinfo"),
    Case("host-port-big", get(b"Host: a.example:99999\r\n"), 400, "RFC 3986 §3.2.3: port"),
    Case("host-port-alpha", get(b"Host: a.example:8x\r\n"), 400, "RFC 3986 §3.2.3: port = *DIGIT"),
    Case("host-empty", get(b"Host:\r\n"), 400, "RFC 9110 §4.2.1: an http host is never empty"),
    Case("host-list", get(b"Host: a.example, b.example\r\n"), 400, "RFC 9110 §7.2: one authority"),
    Case("host-slash", get(b"Host: a.example/x\r\n"), 400, "RFC 9110 §7.2: authority only"),
    # --- chunked body ---
    Case("chunk-nonhex", CHUNKED + b"zz\r\n", 400, "RFC 9112 §7.1: chunk-size = 1*HEXDIG"),
    Case("chunk-0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1: 1*HEXDIG, no 0x"),
    Case("chunk-negative", CHUNKED + b"-5\r\n", 400, "RFC 9112 §7.1: 1*HEXDIG"),
    Case("chunk-17-digits", CHUNKED + b"1" + b"0" * 16 + b"\r\n", 400, "chunk size too long (overflow)"),
    Case("chunk-overflow", CHUNKED + b"FFFFFFFFFFFFFFFF\r\n", 400, "chunk size above 2**63-1"),
    Case("chunk-huge-overflow", CHUNKED + b"F" * 200 + b"\r\n", 400, "chunk size overflow"),
    Case("chunk-empty-size", CHUNKED + b"\r\nhello\r\n", 400, "RFC 9112 §7.1: 1*HEXDIG"),
    Case("chunk-trailing-space", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1: BWS only before ;"),
    Case("chunk-ext-too-long", CHUNKED + b"5;a=" + b"b" * 1100 + b"\r\nhello\r\n0\r\n\r\n", 400,
         "SPEC §5: chunk extension over 1 KiB"),
    Case("chunk-ext-1025", CHUNKED + b"5;" + b"a" * 1024 + b"\r\nhello\r\n0\r\n\r\n", 400,
         "SPEC §5: chunk extension over 1 KiB, by one byte"),
    Case("chunk-ext-no-name", CHUNKED + b"5;\r\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1.1: ext name"),
    Case("chunk-ext-space-value", CHUNKED + b"5;a=b c\r\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1.1"),
    Case("chunk-ext-open-quote", CHUNKED + b'5;a="b\r\nhello\r\n0\r\n\r\n', 400, "RFC 9112 §7.1.1"),
    Case("chunk-missing-crlf", CHUNKED + b"5\r\nhelloX\r\n0\r\n\r\n", 400,
         "RFC 9112 §7.1: chunk-data CRLF"),
    Case("chunk-data-too-long", CHUNKED + b"3\r\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1: chunk-data CRLF"),
    Case("chunk-data-bare-lf", CHUNKED + b"5\r\nhello\n0\r\n\r\n", 400, "RFC 9112 §7.1: CRLF, not LF"),
    Case("chunk-size-bare-lf", CHUNKED + b"5\nhello\r\n0\r\n\r\n", 400, "RFC 9112 §7.1: CRLF, not LF"),
    Case("trailer-obs-fold", CHUNKED + b"0\r\nX-T: a\r\n b\r\n\r\n", 400, "RFC 9112 §7.1.2, §5.2"),
    Case("trailer-nul", CHUNKED + b"0\r\nX-T: a\x00\r\n\r\n", 400, "RFC 9110 §5.5"),
    # --- limits (SPEC §5) ---
    Case("request-line-8k", get(line=b"GET /" + b"a" * 8200 + b" HTTP/1.1"), 414,
         "SPEC §5: request line over 8 KiB -> 414"),
    Case("request-line-8k-no-crlf", b"GET /" + b"a" * 9000, 414, "SPEC §5: bounded before its LF"),
    Case("header-line-8k", get(H + b"X-A: " + b"a" * 8200 + b"\r\n"), 431,
         "SPEC §5: header line over 8 KiB -> 431"),
    Case("header-section-32k", get(H + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000) for i in range(5))),
         431, "SPEC §5: header section over 32 KiB -> 431"),
    Case("headers-101", get(b"".join(b"X-%d: a\r\n" % i for i in range(100)) + H), 431,
         "SPEC §5: more than 100 fields -> 431"),
]


def test_corpus_is_large_and_well_formed() -> None:
    assert len(CORPUS) >= 45
    assert len({case.id for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_refused_with_status(case: Case) -> None:
    events, status = run(RequestParser(), [case.raw])
    assert status == case.status, case.rule
    assert not complete(events)  # nothing of a refused message is ever "complete"


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_refused_byte_by_byte(case: Case) -> None:
    raw = case.raw
    assert_same_verdict(raw, [raw[i:i + 1] for i in range(len(raw))])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_splits_give_the_same_verdict(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(CORPUS))
    raw = case.raw
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0] + cuts, cuts + [len(raw)])]
    assert_same_verdict(raw, pieces)
    # the same request pipelined after a good one: the good one completes, then the verdict
    good = b"GET /ok HTTP/1.1\r\n" + H + b"\r\n"
    events, status = run(RequestParser(), [good + raw[:cuts[0] if cuts else 0], raw[cuts[0] if cuts else 0:]])
    assert status == case.status
    assert complete(events)[0][0].path == b"/ok"


def test_error_after_a_complete_message_is_deferred() -> None:
    parser = RequestParser()
    events = parser.feed(b"GET /1 HTTP/1.1\r\n" + H + b"\r\nGET /2 HTTP/9.9\r\n")
    assert [type(e) for e in events] == [RequestHead, EndOfMessage]
    assert parser.error is not None and parser.error.status == 505
    with pytest.raises(ProtocolError):
        parser.feed(b"")


def test_smuggled_request_inside_a_body_is_body() -> None:
    smuggled = b"GET /admin HTTP/1.1\r\nHost: a.example\r\n\r\n"
    raw = POST + b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    for pieces in ([raw], [raw[i:i + 1] for i in range(len(raw))]):
        msgs = messages(run(RequestParser(), pieces)[0])
        assert len(msgs) == 1 and msgs[0][1] == smuggled and msgs[0][2] == []
    chunked = CHUNKED + b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    msgs = messages(run(RequestParser(), [chunked])[0])
    assert len(msgs) == 1 and msgs[0][1] == smuggled


def test_cl_te_smuggle_never_yields_a_second_head() -> None:
    raw = POST + b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n"
    events, status = run(RequestParser(), [raw])
    assert status == 400 and events == []
