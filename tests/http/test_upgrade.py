"""RFC 9110 §7.8 Upgrade in the sans-IO HTTP layer (issue 16 item 1): what a request may
offer, which 101 answers it, and the request parser holding the new protocol's bytes."""
from __future__ import annotations

import pytest

from buddylb.errors import ProtocolError
from buddylb.http.request import EndOfMessage, RequestHead, RequestParser, serialize_request_head
from buddylb.http.response import ResponseHead, ResponseParser

WS = (b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      b"Sec-WebSocket-Version: 13\r\n\r\n")


def head_of(raw: bytes) -> RequestHead:
    return RequestParser().feed(raw)[0]


@pytest.mark.parametrize("fields, offer", [
    (b"Connection: Upgrade\r\nUpgrade: websocket\r\n", b"websocket"),
    (b"Connection: keep-alive, UPGRADE\r\nUpgrade: WebSocket\r\n", b"WebSocket"),
    (b"Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n", b"websocket"),  # h2c always removed
    (b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n", b""),
    (b"Connection: Upgrade\r\nUpgrade: foo/2, bar\r\n", b"foo/2, bar"),  # any token
    (b"Connection: Upgrade\r\nUpgrade: bad token, x/\r\n", b""),  # not protocol elements: dropped
    (b"Upgrade: websocket\r\n", b""),  # Connection does not name it: no upgrade
    (b"Connection: Upgrade\r\n", b""),  # nothing to upgrade to
    (b"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n", b"websocket"),  # no body
    (b"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n", b""),  # a body: plain request
    (b"Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n", b""),
])
def test_what_a_request_offers(fields, offer):
    assert head_of(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n").upgrade == offer


def test_http_1_0_upgrade_is_ignored():
    assert head_of(b"GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade == b""


def test_upgrade_fields_are_hop_by_hop_in_the_serialised_head():
    """The exchange re-adds them for an upgrade request; the head itself never carries them."""
    out = serialize_request_head(head_of(WS))
    assert b"upgrade" not in out.lower() and b"Sec-WebSocket-Version: 13\r\n" in out


def test_the_parser_holds_what_follows_an_upgrade_request_until_told():
    parser = RequestParser()
    events = parser.feed(WS + b"\x81\x05hello")
    assert [type(e) for e in events] == [RequestHead, EndOfMessage]
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") == []  # held, not parsed (and not refused)
    assert not parser.idle
    assert parser.switched() == b"\x81\x05helloGET / HTTP/1.1\r\n\r\n"
    with pytest.raises(ProtocolError):
        parser.feed(b"more")  # after a switch the parser is done


def test_after_a_refused_upgrade_the_held_bytes_are_the_next_request():
    parser = RequestParser()
    parser.feed(WS + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    parser.not_switched()
    events = parser.feed(b"")
    assert events[0].path == b"/next" and parser.idle


def test_a_101_must_answer_an_offer():
    with pytest.raises(ProtocolError) as err:
        ResponseParser(b"GET").feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    assert err.value.status == 502


@pytest.mark.parametrize("upgrade", [b"", b"Upgrade: h2c\r\n", b"Upgrade: websocket, irc\r\n"])
def test_a_101_must_name_only_offered_protocols(upgrade):
    with pytest.raises(ProtocolError):
        ResponseParser(b"GET", b"websocket").feed(b"HTTP/1.1 101 Switching Protocols\r\n" + upgrade + b"\r\n")


def test_a_valid_101_ends_the_exchange_and_keeps_the_new_protocols_bytes():
    parser = ResponseParser(b"GET", b"websocket")
    assert parser.must_close  # an upgrade's server connection is never reused, whatever the answer
    events = parser.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
                         b"\x81\x02hi")
    assert len(events) == 1 and isinstance(events[0], ResponseHead) and events[0].status == 101
    assert parser.complete and parser.feed(b"\x81\x02yo") == []
    assert parser.rest() == b"\x81\x02hi\x81\x02yo" and parser.rest() == b""


def test_an_upgrade_request_may_get_an_ordinary_answer():
    parser = ResponseParser(b"GET", b"websocket")
    events = parser.feed(b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nno")
    assert events[0].status == 426 and isinstance(events[-1], EndOfMessage) and parser.must_close
