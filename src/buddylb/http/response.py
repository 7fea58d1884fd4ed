"""Sans-IO HTTP/1.1 response framing (RFC 9112) for the L7 proxy: server bytes in, events out.

Owns: `ResponseParser` (one exchange: any 1xx heads, then the final response), the
re-serialisation of a response head for the client, and the canned error responses
buddylb itself answers with. It must never touch a socket, a clock or asyncio, and
never pass on a response whose framing is doubtful: every violation raises
`ProtocolError(502, ...)` and sets `must_close`, so the server connection is dropped
rather than reused. Fields and chunks are read by `framing.py`, shared with `request.py`.

Entry points for io/: `ResponseParser.feed` (stateful), `parse_response_head` (one call
on a buffer: (head, end) or None; no state, no body), `serialize_response_head` (the
head for the client, from the server's validated lines) and `error_response`. Status
lines repeat, so their verdicts are remembered (a bounded cache; errors never cached).

Over 400 lines because the parser, its remembered whole heads and the head serialiser
are one compiled module (setup.py COMPILED_HTTP): the keep-alive fast path calls between
them as C calls, which a split across modules would turn back into Python calls.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from typing import Iterable, Union

from buddylb.errors import ProtocolError
from buddylb.http import limits
from buddylb.http.framing import (
    F_CHUNKED, F_CLOSE, F_LENGTH, F_NONE, FRAMING_FIELDS, HOP_BY_HOP, BodyChunk, ChunkedDecoder, EndOfMessage,
    Fields, Framing, HeadReader, check_transfer_encoding, connection_named, field_values, connection_tokens,
    parse_content_length, render_extra, render_fields,
)
from buddylb.http.head import FieldIndex, forward_fields, index_fields, read_head
from buddylb.http.upgrade import check_switch

__all__ = [
    "BodyChunk", "EndOfMessage", "Framing", "ResponseEvent", "ResponseHead",
    "ResponseParser", "error_response", "parse_response_head", "serialize_response_head",
]

# status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4); the
# second SP is tolerated when missing (reason-phrase is optional and often dropped).
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
_BAD = 502
_CONNECTION_CLOSE = (b"connection", b"close")


@dataclass(slots=True, init=False)
class ResponseHead:
    """A validated response head; `headers` in order with lowercased names. For HEAD
    responses and 304, `content_length` is the Content-Length the server sent (metadata,
    framing NONE); for LENGTH framing it is the body length."""

    status: int
    reason: bytes
    version: tuple[int, int]
    headers: Fields
    framing: Framing
    content_length: int | None
    keep_alive: bool
    # How the head arrived, for forwarding (None: built by hand, rendered from `headers`).
    _lines: list[bytes] | None = field(default=None, repr=False, compare=False)
    _section: bytes = field(default=b"", repr=False, compare=False)
    _may_drop: bool = field(default=True, repr=False, compare=False)
    _connection: frozenset[bytes] = field(default=frozenset(), repr=False, compare=False)
    _wire: bytes | None = field(default=None, repr=False, compare=False)  # serialised, no extras
    _wire_close: bytes | None = field(default=None, repr=False, compare=False)  # ... with `connection: close` alone

    def __init__(self, status: int, reason: bytes, version: tuple[int, int], headers: Fields,
                 framing: Framing, content_length: int | None, keep_alive: bool,
                 _lines: list[bytes] | None = None, _section: bytes = b"", _may_drop: bool = True,
                 _connection: frozenset[bytes] = frozenset()) -> None:  # written out: compiled too
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.framing = framing
        self.content_length = content_length
        self.keep_alive = keep_alive
        self._lines = _lines
        self._section = _section
        self._may_drop = _may_drop
        self._connection = _connection
        self._wire = None
        self._wire_close = None

    @property
    def informational(self) -> bool:
        """A 1xx head: no body, no EndOfMessage, the final head follows."""
        return self.status < 200

    def header(self, name: bytes) -> bytes | None:
        values = field_values(self.headers, name.lower())
        return b", ".join(values) if values else None


ResponseEvent = Union[ResponseHead, BodyChunk, EndOfMessage]


StatusLine = tuple[tuple[int, int], int, bytes]


@lru_cache(maxsize=256)
def _parse_status_line(line: bytes) -> StatusLine:
    """(version, status, reason); remembered: servers send the same few status lines
    (errors are never cached: they raise every time)."""
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError(_BAD, "invalid status line")
    version = (int(match[1]), int(match[2]))
    if version != (1, 1) and version != (1, 0):
        raise ProtocolError(_BAD, "unsupported HTTP version from server")
    status = int(match[3])
    if not 100 <= status <= 599:
        raise ProtocolError(_BAD, "status code out of range")
    return version, status, match[4] or b""


def _build_response_head(start: StatusLine, index: FieldIndex, method: bytes,
                         lines: list[bytes], section: bytes, offered: bytes = b"") -> ResponseHead:
    """Message body length of a response (RFC 9112 §6.3), applied strictly.  A 101 is
    valid only as the answer to an upgrade request that `offered` its protocols."""
    version, status, reason = start
    if status == 101:
        check_switch(offered, index.fields)  # ProtocolError(502) when not asked for
    special = index.special
    connection = special.get(b"connection")
    if connection is None:
        tokens: frozenset[bytes] = frozenset()
        keep_alive = version == (1, 1)
    else:
        tokens = connection_tokens(connection, _BAD)
        keep_alive = b"close" not in tokens and (version == (1, 1) or b"keep-alive" in tokens)
    tes = special.get(b"transfer-encoding")
    cls = special.get(b"content-length")
    if tes and (version == (1, 0) or cls):  # RFC 9112 §6.1, §6.3 rule 3: smuggling signs
        raise ProtocolError(_BAD, "Transfer-Encoding with Content-Length or in HTTP/1.0")
    length = parse_content_length(cls, _BAD) if cls else None
    if status < 200 or status in (204, 304) or method == b"HEAD":  # §6.3 rule 1
        framing = F_NONE
    elif tes:
        check_transfer_encoding(tes, _BAD, _BAD)
        framing = F_CHUNKED
    elif length is not None:
        framing = F_LENGTH
    else:  # §6.3 rule 8: read until the server closes
        framing, keep_alive = F_CLOSE, False
    return ResponseHead(status, reason, version, index.fields, framing, length, keep_alive,
                        lines, section, index.may_drop, tokens)


def _fast_head(buf: bytes | bytearray, pos: int, method: bytes,
               offered: bytes = b"") -> tuple[ResponseHead, int] | None:
    """A whole, clean head at buf[pos:] read in one go (see `head.py`), or None when the
    line reader must decide. Raises only what the line reader would raise on these bytes."""
    found = read_head(buf, pos)
    if found is None:
        return None
    start, section, lines, index, end = found
    return _build_response_head(_parse_status_line(start), index, method, lines, section, offered), end


def parse_response_head(buf: bytes | bytearray, pos: int = 0, method: bytes = b"GET",
                        offered: bytes = b"") -> tuple[ResponseHead, int] | None:
    """One call for a buffer that may hold a whole response head at buf[pos:] (for a
    request `method`): (head, the position after it) when complete, None when more bytes
    are needed, ProtocolError(502) when invalid — the verdict `ResponseParser` gives
    these bytes. No state is kept: the caller bounds its buffer and reads the body."""
    found = _fast_head(buf, pos, method, offered)
    if found is not None:
        return found
    reader = ResponseParser._new_reader()
    end = reader.read(buf, pos)
    if not reader.complete:
        return None
    index = index_fields(reader.lines)
    assert index is not None  # every line passed the field-line regex
    return _build_response_head(reader.start, index, method, reader.lines,  # type: ignore[arg-type]
                                reader.section, offered), end


_HEAD, _LENGTH, _CHUNKED, _CLOSE, _DONE, _FAILED, _SWITCHED = range(7)
# Response heads already judged valid, by request method and exact head bytes
# (`ResponseParser.whole`): a server repeats the same head but for its Date, and a head's
# verdict is a function of its bytes and the method alone.  Only valid heads are
# remembered; bounded (8 methods x 256 heads of at most 2 KiB, about 4 MiB at worst; a
# method's table is cleared when full).
_WHOLE: dict[bytes, dict[bytes, ResponseHead]] = {}
# The last head remembered per method, (its bytes, the head, the length of a whole
# response with it or -1: none is whole, its keep_alive): a server's responses start with
# those bytes until its Date turns; checked with one startswith, before the search for the
# head's end, a slice and a hash that the table needs (and no read of the head's fields)
_LAST: dict[bytes, tuple[bytes, ResponseHead, int, bool]] = {}
_WHOLE_MAX = 256
_WHOLE_BYTES = 2048
_WHOLE_METHODS = 8


def _whole_size(head: ResponseHead, end: int) -> int:
    """The length of a whole response (`ResponseParser.whole`) with `head` (`end` bytes
    long): the head alone, or with all of its Content-Length; -1: no such response (a 1xx,
    a chunked or close-delimited body)."""
    framing = head.framing
    if framing is F_NONE:
        return end if head.status >= 200 else -1
    if framing is F_LENGTH and head.content_length is not None:
        return end + head.content_length
    return -1


class ResponseParser:
    """Parses one response exchange from a server connection, for a request `method`.

    Create one per request sent. `must_close` turns True when the connection cannot be
    reused: an error, `Connection: close`, HTTP/1.0 without keep-alive, a close-delimited
    body, or bytes after the end of the response (unsolicited, dropped).  For an upgrade
    request (`offered`: the Upgrade value forwarded) it is True from the start: that
    server connection is never reused, whatever the answer; a valid 101 is its last
    event, and `rest()` gives the bytes of the new protocol that came with it."""

    __slots__ = ("must_close", "complete", "_method", "_buf", "_state", "_reader",
                 "_remaining", "_chunked", "_informational", "_offered")

    def __init__(self, method: bytes, offered: bytes = b"") -> None:
        self._buf = bytearray()
        self.reset(method, offered)

    def reset(self, method: bytes, offered: bytes = b"") -> None:
        """Fresh for the next exchange, as `ResponseParser(method, offered)` would be: the
        L7 machine reuses one parser per client connection (no object per request)."""
        self.must_close = bool(offered)
        self.complete = False
        self._offered = offered
        self._method = method
        if self._buf:
            self._buf = bytearray()
        self._state = _HEAD
        self._reader: HeadReader | None = None  # only while a head arrives in pieces
        self._remaining = 0
        self._chunked: ChunkedDecoder | None = None
        self._informational = 0

    @staticmethod
    def _new_reader() -> HeadReader:
        return HeadReader(_parse_status_line, _BAD, _BAD, _BAD)

    def feed(self, data: bytes) -> list[ResponseEvent]:
        """Events for `data`; raises ProtocolError(502) on any framing violation."""
        if self._state == _FAILED:
            raise ProtocolError(_BAD, "response parser already failed")
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
        else:
            buf = data
        events: list[ResponseEvent] = []
        try:
            pos = self._run(buf, events)
        except ProtocolError:
            self._state, self.must_close, self._buf = _FAILED, True, bytearray()
            raise
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < len(buf):
            self._buf = bytearray(buf[pos:])
        return events

    def whole(self, data: bytes) -> tuple[ResponseHead, bytes] | None:
        """The fast path of `feed` for the usual read: a fresh parser and `data` exactly
        one complete final response (no body, or all of its Content-Length).  Returns
        (head, body) and ends the exchange as `feed` would (`complete`, `must_close`), or
        None with nothing changed: then call `feed(data)`, which gives these bytes their
        verdict (an invalid head is left to `feed` to refuse)."""
        if self._state != _HEAD or self._buf or self._reader is not None:
            return None
        last = _LAST.get(self._method)
        if last is not None and data.__class__ is bytes and data.startswith(last[0]):
            if len(data) != last[2]:  # what the checks below say of this head, remembered
                return None
            head = last[1]
            end = len(last[0])
            if not last[3]:
                self.must_close = True
            self._state, self.complete = _DONE, True
            return head, data[end:]
        head, end = self._judged(data)
        if head is None:
            return None
        if len(data) != _whole_size(head, end):
            return None
        if not head.keep_alive:
            self.must_close = True
        self._state, self.complete = _DONE, True
        return head, data[end:]

    def _judged(self, data: bytes) -> tuple[ResponseHead | None, int]:
        """`whole`'s head: a remembered one for these exact bytes, else judged now and
        remembered if valid; (None, 0) when it is not one clean head."""
        known = _WHOLE.get(self._method)
        cut = data.find(b"\r\n\r\n") + 4 if data.__class__ is bytes else 3
        key = data[:cut] if 3 < cut <= _WHOLE_BYTES else None
        head = known.get(key) if known is not None and key is not None else None
        if head is not None:
            _LAST[self._method] = (key, head, _whole_size(head, cut), head.keep_alive)
            end = cut
        else:
            try:
                found = _fast_head(data, 0, self._method, self._offered)
            except ProtocolError:
                return None, 0
            if found is None:
                return None, 0
            head, end = found
            if key is not None and end == cut:
                if known is None and len(_WHOLE) < _WHOLE_METHODS:  # methods are the client's
                    known = _WHOLE[self._method] = {}
                elif known is not None and len(known) >= _WHOLE_MAX:
                    known.clear()
                if known is not None:
                    known[key] = head
                    _LAST[self._method] = (key, head, _whole_size(head, end), head.keep_alive)
        return head, end

    def feed_eof(self) -> list[ResponseEvent]:
        """The server closed: ends a close-delimited body; anything unfinished is a 502
        (the proxy then truncates what it relayed, never completes it)."""
        self.must_close = True
        if self._state == _CLOSE:
            self._state, self.complete = _DONE, True
            return [EndOfMessage()]
        if self._state == _DONE:
            return []
        self._state = _FAILED
        raise ProtocolError(_BAD, "server closed the connection before the response ended")

    def _run(self, buf: bytes | bytearray, events: list[ResponseEvent]) -> int:
        pos, end = 0, len(buf)
        while True:
            state = self._state
            if state == _HEAD:
                if pos >= end:  # nothing of the next head yet
                    return pos
                found = _fast_head(buf, pos, self._method, self._offered) if self._reader is None else None
                if found is not None:
                    head, pos = found
                else:
                    reader = self._reader
                    if reader is None:
                        reader = self._reader = self._new_reader()
                    pos = reader.read(buf, pos)
                    if not reader.complete:
                        return pos
                    index = index_fields(reader.lines)
                    assert index is not None  # every line passed the field-line regex
                    head = _build_response_head(reader.start, index, self._method,  # type: ignore[arg-type]
                                                reader.lines, reader.section, self._offered)
                    self._reader = None
                self._start_body(head, events)
            elif state == _LENGTH or state == _CLOSE:
                if pos >= end:
                    return pos
                n = end - pos if state == _CLOSE else min(self._remaining, end - pos)
                events.append(BodyChunk(bytes(buf[pos:pos + n])))
                pos += n
                self._remaining -= n
                if state == _LENGTH and not self._remaining:
                    self._end(events, [])
            elif state == _CHUNKED:
                assert self._chunked is not None
                pos = self._chunked.decode(buf, pos, events)
                if not self._chunked.complete:
                    return pos
                self._end(events, self._chunked.trailers)
            elif state == _SWITCHED:  # the new protocol's bytes: kept for `rest()`
                return pos
            else:  # _DONE: a server must not send more than it was asked for
                if pos < end:
                    self.must_close = True
                return end

    def rest(self) -> bytes:
        """After a 101: the bytes that followed its head (the new protocol's), once."""
        rest = bytes(self._buf)
        self._buf = bytearray()
        return rest

    def _start_body(self, head: ResponseHead, events: list[ResponseEvent]) -> None:
        events.append(head)
        if head.status == 101:  # validated by check_switch: the exchange ends here
            self._state, self.complete, self.must_close = _SWITCHED, True, True
            return
        if head.informational:  # RFC 9110 §15.2: the final response follows
            self._informational += 1
            if self._informational > limits.MAX_INFORMATIONAL_RESPONSES:
                raise ProtocolError(_BAD, "too many 1xx responses")
            return
        if not head.keep_alive:
            self.must_close = True
        if head.framing is F_CHUNKED:
            self._chunked = ChunkedDecoder(_BAD, _BAD)
            self._state = _CHUNKED
        elif head.framing is F_CLOSE:
            self._state = _CLOSE
        elif head.framing is F_LENGTH and head.content_length:
            self._remaining = head.content_length
            self._state = _LENGTH
        else:
            self._end(events, [])

    def _end(self, events: list[ResponseEvent], trailers: Fields) -> None:
        events.append(EndOfMessage(trailers))
        self._state, self.complete, self._chunked = _DONE, True, None


_DROP_HOP = FRAMING_FIELDS | HOP_BY_HOP
_DROP_SETS: dict[frozenset[bytes], frozenset[bytes]] = {}  # Connection tokens -> what to drop


def _drop_set(connection: frozenset[bytes]) -> frozenset[bytes]:
    """_DROP_HOP plus the fields Connection names, remembered (framing.connection_tokens
    hands out the same set for the same line, so this is one dict lookup per response)."""
    found = _DROP_SETS.get(connection)
    if found is None:
        found = _DROP_HOP | connection
        if len(_DROP_SETS) < 256:
            _DROP_SETS[connection] = found
    return found


def serialize_response_head(head: ResponseHead, extra_headers: Iterable[tuple[bytes, bytes]] = (),
                            drop_hop_by_hop: bool = True, framing: Framing | None = None) -> bytes:
    """The head to send to the client: `HTTP/1.1 status reason`, the server's validated
    field lines minus framing and (by default) hop-by-hop fields, then `extra_headers`
    (Set-Cookie, Connection...), then framing. `framing` overrides the parsed one, e.g.
    CLOSE to relay a chunked body to an HTTP/1.0 client. HEAD and 304 keep the server's
    Content-Length. Lines are kept as received (rebuilt from validated parts).  Without
    extras or overrides, or with `connection: close` as the only extra (every response of a
    client that sent `Connection: close`), the result is remembered on the head (a head
    remembered by `ResponseParser.whole` comes back)."""
    plain = drop_hop_by_hop and (framing is None or framing is head.framing)
    close = False
    if plain and extra_headers:
        close = extra_headers.__class__ is list and len(extra_headers) == 1 and extra_headers[0] == _CONNECTION_CLOSE
        plain = close
        if close and head._wire_close is not None:
            return head._wire_close
    elif plain and head._wire is not None:
        return head._wire
    parts: list[bytes] = []
    render_extra(parts, extra_headers)
    extra = b"".join(parts)
    lines = head._lines
    if lines is None:
        drop: frozenset[bytes] = (_DROP_HOP | connection_named(head.headers) if drop_hop_by_hop
                                  else FRAMING_FIELDS)
        parts = []
        render_fields(parts, head.headers, drop)
        fields = b"".join(parts)
    elif not head._may_drop:
        fields = head._section
    else:
        drop = _drop_set(head._connection) if drop_hop_by_hop else FRAMING_FIELDS
        fields = forward_fields(lines, head.headers, drop, True)
    framing = framing or head.framing
    if framing is F_CHUNKED:
        tail = b"transfer-encoding: chunked\r\n"
    elif head.content_length is not None and (framing is F_LENGTH or (
            framing is F_NONE and head.status >= 200 and head.status != 204)):
        tail = b"content-length: %d\r\n" % head.content_length
    else:
        tail = b""
    out = b"HTTP/1.1 %d %s\r\n%s%s%s\r\n" % (head.status, head.reason, fields, extra, tail)
    if close:
        head._wire_close = out
    elif plain:
        head._wire = out
    return out


@lru_cache(maxsize=64)
def error_response(status: int, close: bool = True) -> bytes:
    """A small canned response buddylb sends itself (400, 405, 408, 414, 431, 501, 502,
    503, 504, 505, ...), with Content-Length and, by default, `Connection: close`."""
    phrase = HTTPStatus(status).phrase.encode()
    body = b"%d %s\n" % (status, phrase)
    lines = [b"HTTP/1.1 %d %s" % (status, phrase), b"content-type: text/plain; charset=utf-8",
             b"content-length: %d" % len(body), b"cache-control: no-store"]
    if status == 405:  # RFC 9110 §15.5.6: Allow is required; we relay every method but CONNECT
        lines.append(b"allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
    if close:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
