"""Sans-IO HTTP/1.1 request framing (RFC 9112) for the L7 proxy: bytes in, events out.

Owns: the request parser (`RequestParser`) and its `RequestHead`, the request-line, target and Host rules (RFC 9112
§3), and the re-serialisation of a request head for forwarding. It must never touch a socket, a clock or asyncio,
never relay raw client bytes (the forwarded head is rebuilt from validated parts), and never let a message through
that RFC 9112 / SPEC §5 says to refuse: every violation raises `ProtocolError` carrying the status the client must
get. Fields and chunks are read by `framing.py`. Theory of operation. A head that is whole in the buffer is read in
one pass (`head.read_head`, native when compiled); otherwise, or when that pass is unsure, it is read and validated
line by line as bytes arrive (`framing.HeadReader`, the judge). When the empty line ends it, the head as a whole is
checked (Host, framing, Connection) and becomes a `RequestHead`; then the body is cut by Content-Length or de-chunked
into `BodyChunk`s, then `EndOfMessage`, then the next pipelined head; after a head that asks to upgrade
(`RequestHead.upgrade`, http/upgrade.py) the parser holds what follows until the proxy says whether the server
switched (`switched` / `not_switched`). `feed` returns a list of events; if it meets an error after a message already
ended in the same call, it returns the events of the complete messages and raises the error on the next call. Request
lines and Host values repeat, so their verdicts are remembered (bounded caches; errors are never cached). This module
is over 400 lines because the request head, its checks, its parser and its forwarding are one concept; the field
machinery they share with responses lives in framing.py and head.py. Entry points for io/: `RequestParser.feed`
(stateful, any split), `parse_request_head` (one call on a buffer: (head, end) or None when incomplete; no state, no
body), and `serialize_request_head` (the forwarded head: validated lines as received, minus hop-by-hop, framing,
X-Forwarded-* and, unless `keep_underscores`, `_` names).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Union

from buddylb.errors import ProtocolError
from buddylb.http.framing import (
    F_CHUNKED, F_LENGTH, F_NONE, FRAMING_FIELDS, HOP_BY_HOP, LAST_CHUNK, TCHAR, BodyChunk, ChunkedDecoder, EndOfMessage,
    Fields, Framing, HeadReader, check_transfer_encoding, connection_named, encode_chunk, encode_last_chunk,
    field_values, connection_tokens, parse_content_length, render_extra, render_fields,
)
from buddylb.http.head import FieldIndex, forward_fields, head_size, index_fields, read_head
from buddylb.http.upgrade import offer

__all__ = [
    "BodyChunk", "EndOfMessage", "Framing", "HOP_BY_HOP", "LAST_CHUNK", "PROXY_OWNED", "RequestEvent", "RequestHead",
    "RequestParser", "encode_chunk", "encode_last_chunk", "head_size", "parse_request_head", "serialize_request_head",
]

# request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single SPs.
_REQUEST_LINE = re.compile(rb"([%s]+) ([^ ]+) (HTTP/[0-9]\.[0-9])" % TCHAR)
_TARGET_CHARS = re.compile(rb"[\x21\x22\x24-\x7e]+")  # VCHAR except "#" (RFC 9112 §3.2)
_ABSOLUTE_FORM = re.compile(rb"([A-Za-z][A-Za-z0-9+\-.]*)://([^/?]*)(.*)")
# Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2); no userinfo, no spaces.
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::([0-9]*))?")


@dataclass(slots=True, init=False)
class RequestHead:
    """A validated request head. `headers` keeps every field line in order, names lowercased; `host` is the Host value
    or, in absolute-form, the target's authority; `path` is the origin-form target to forward (`*` for OPTIONS *). The
    `__init__` is written out (not generated) so that the compiled module compiles it too."""

    method: bytes
    target: bytes
    version: tuple[int, int]
    headers: Fields
    host: bytes
    framing: Framing
    content_length: int | None
    keep_alive: bool
    expect_continue: bool
    path: bytes
    _cookies: dict[bytes, bytes] | None = field(default=None, repr=False, compare=False)
    # How the head arrived, for forwarding (None: built by hand, rendered from `headers`).
    _lines: list[bytes] | None = field(default=None, repr=False, compare=False)
    _section: bytes = field(default=b"", repr=False, compare=False)
    _may_drop: bool = field(default=True, repr=False, compare=False)
    _underscore: bool = field(default=True, repr=False, compare=False)
    _host_field: bool = field(default=False, repr=False, compare=False)
    _connection: frozenset[bytes] = field(default=frozenset(), repr=False, compare=False)
    # the last forwarded head made from this one: (extra fields, keep_underscores, bytes)
    _wire: tuple | None = field(default=None, repr=False, compare=False)
    upgrade: bytes = field(default=b"", compare=False)  # to forward (upgrade.py `offer`); b"": none
    # what io/l7/exchange derives per request, kept with a remembered head: head_size(), path as str
    _size: int = field(default=-1, repr=False, compare=False)
    _url: str | None = field(default=None, repr=False, compare=False)

    def __init__(self, method: bytes, target: bytes, version: tuple[int, int], headers: Fields, host: bytes,
                 framing: Framing, content_length: int | None, keep_alive: bool, expect_continue: bool, path: bytes,
                 _cookies: dict[bytes, bytes] | None = None, _lines: list[bytes] | None = None, _section: bytes = b"",
                 _may_drop: bool = True, _underscore: bool = True, _host_field: bool = False,
                 _connection: frozenset[bytes] = frozenset(), upgrade: bytes = b"") -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.host = host
        self.framing = framing
        self.content_length = content_length
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.path = path
        self._cookies = _cookies
        self._lines = _lines
        self._section = _section
        self._may_drop = _may_drop
        self._underscore = _underscore
        self._host_field = _host_field
        self._connection = _connection
        self.upgrade = upgrade
        self._wire, self._size, self._url = None, -1, None

    def header(self, name: bytes) -> bytes | None:
        """The field's combined value (lines joined by ", ", RFC 9110 §5.3), or None."""
        values = field_values(self.headers, name.lower())
        return b", ".join(values) if values else None

    def cookies(self) -> dict[bytes, bytes]:
        """Cookie pairs of every Cookie line (RFC 6265 §5.4), parsed once; the first pair of a name wins, values are
        kept raw (quotes included), nameless pairs skipped."""
        if self._cookies is None:
            jar: dict[bytes, bytes] = {}
            for line in field_values(self.headers, b"cookie"):
                for pair in line.split(b";"):
                    name, eq, value = pair.strip(b" \t").partition(b"=")
                    if eq and name:
                        jar.setdefault(name.rstrip(b" \t"), value.lstrip(b" \t"))
            self._cookies = jar
        return self._cookies


RequestEvent = Union[RequestHead, BodyChunk, EndOfMessage]


RequestLine = tuple[bytes, bytes, tuple[int, int], bytes, Union[bytes, None]]


def _parse_request_line(line: bytes) -> RequestLine:
    """(method, target, version, path, authority) of a request line (RFC 9112 §3). Lines repeat (a client asks for the
    same paths): the verdicts on short ones are remembered (a bounded cache; errors are never cached, they raise every
    time)."""
    if len(line) <= _CACHED_LINE:
        return _remembered_request_line(line)
    return _check_request_line(line)


_CACHED_LINE = 256


def _check_request_line(line: bytes) -> RequestLine:
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError(400, "invalid request line (method, target or version)")
    method, target, proto = match[1], match[2], match[3]
    version = (proto[5] - 48, proto[7] - 48)
    if version != (1, 1) and version != (1, 0):
        # HTTP/2.0 (also the h2 prior-knowledge preface "PRI * HTTP/2.0"), HTTP/1.2...
        raise ProtocolError(505, f"HTTP version {proto.decode()} not supported")
    if method == b"CONNECT":
        raise ProtocolError(405, "CONNECT is not supported by a reverse proxy")
    if _TARGET_CHARS.fullmatch(target) is None:
        raise ProtocolError(400, "invalid character in request target")
    if target[0] == 47:  # "/": origin-form (RFC 9112 §3.2.1)
        return method, target, version, target, None
    if target == b"*":  # asterisk-form (RFC 9112 §3.2.4)
        if method != b"OPTIONS":
            raise ProtocolError(400, "asterisk-form is only for OPTIONS")
        return method, target, version, target, None
    absolute = _ABSOLUTE_FORM.fullmatch(target)  # absolute-form (RFC 9112 §3.2.2)
    if absolute is None or absolute[1].lower() not in (b"http", b"https"):
        raise ProtocolError(400, "request target is not origin-form or http(s) absolute-form")
    authority, rest = absolute[2], absolute[3]
    _check_host(authority, "authority of the request target")
    path = rest if rest[:1] == b"/" else b"/" + rest
    return method, target, version, path, authority


_remembered_request_line = lru_cache(maxsize=1024)(_check_request_line)


def _check_host(value: bytes, what: str) -> None:
    if not _host_ok(value):
        raise ProtocolError(400, f"invalid {what}")


@lru_cache(maxsize=512)
def _host_ok(value: bytes) -> bool:
    """Host = uri-host [ ":" port ]; cached: a site's requests repeat the same few hosts."""
    match = _HOST.fullmatch(value)
    port = match[1] if match else None
    return not (match is None or (port and (len(port) > 5 or int(port) > 65535)))


def _build_request_head(start: RequestLine, index: FieldIndex, lines: list[bytes],
                        section: bytes) -> RequestHead:
    """Whole-head checks (RFC 9112 §3.2 Host, §6.1 and §6.3 framing, §9.3 persistence)."""
    method, target, version, path, authority = start
    special = index.special
    hosts = special.get(b"host")
    if hosts is None:
        if version == (1, 1):
            raise ProtocolError(400, "missing (HTTP/1.1) or duplicate Host field")
    elif len(hosts) > 1:
        raise ProtocolError(400, "missing (HTTP/1.1) or duplicate Host field")
    else:
        _check_host(hosts[0], "Host field")
    host = authority if authority is not None else (hosts[0] if hosts else b"")
    tes = special.get(b"transfer-encoding")
    cls = special.get(b"content-length")
    framing, length = F_NONE, None
    if tes:
        if version == (1, 0):
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if cls:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        check_transfer_encoding(tes, 400, 501)
        framing = F_CHUNKED
    elif cls:
        framing, length = F_LENGTH, parse_content_length(cls, 400)
    connection = special.get(b"connection")
    upgrade = b""
    if connection is None:
        tokens: frozenset[bytes] = frozenset()
        keep_alive = version == (1, 1)
    else:
        tokens = connection_tokens(connection, 400)
        keep_alive = b"close" not in tokens and (version == (1, 1) or b"keep-alive" in tokens)
        if b"upgrade" in tokens:
            upgrade = offer(index.fields, version, framing is F_NONE or length == 0)
    expect = special.get(b"expect")
    expect_continue = (version == (1, 1) and expect is not None and len(expect) == 1
                       and expect[0].lower() == b"100-continue")
    return RequestHead(method, target, version, index.fields, host, framing, length,
                       keep_alive, expect_continue, path, None, lines, section, index.may_drop,
                       index.underscore, hosts is not None, tokens, upgrade)


def _fast_head(buf: bytes | bytearray, pos: int) -> tuple[RequestHead, int] | None:
    """A whole, clean head at buf[pos:] read in one go (see `head.py`), or None when the line reader must decide.
    Raises only what the line reader would raise on these bytes."""
    found = read_head(buf, pos)
    if found is None:
        return None
    start, section, lines, index, end = found
    return _build_request_head(_parse_request_line(start), index, lines, section), end


def parse_request_head(buf: bytes | bytearray, pos: int = 0) -> tuple[RequestHead, int] | None:
    """One call for a buffer that may hold a whole request head at buf[pos:]: (head, the position after it) when
    complete, None when more bytes are needed, ProtocolError when invalid (the same verdict `RequestParser` gives
    these bytes). It keeps no state: a caller that sees None and buffers more must cap what it buffers (or use
    `RequestParser`, which bounds a head while it arrives); the body is the caller's."""
    found = _fast_head(buf, pos)
    if found is not None:
        return found
    reader = RequestParser._new_reader()
    end = reader.read(buf, pos)
    if not reader.complete:
        return None
    return _slow_head(reader), end


def _slow_head(reader: HeadReader) -> RequestHead:
    index = index_fields(reader.lines)
    assert index is not None  # every line passed the field-line regex
    return _build_request_head(reader.start, index, reader.lines, reader.section)  # type: ignore[arg-type]


_HEAD, _LENGTH, _CHUNKED, _FAILED, _HELD = range(5)
# Valid whole bodiless heads by their exact bytes (`RequestParser.whole`; a verdict is a function of the bytes).
_WHOLE: dict[bytes, RequestHead] = {}
_WHOLE_MAX = 512
_WHOLE_BYTES = 2048


class RequestParser:
    """Parses the client side of one connection: heads, bodies, pipelined requests."""

    __slots__ = ("_buf", "_state", "_reader", "_remaining", "_chunked", "_error", "_mark")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = _HEAD
        self._reader: HeadReader | None = None  # only while a head arrives in pieces
        self._remaining = 0
        self._chunked: ChunkedDecoder | None = None
        self._error: ProtocolError | None = None
        self._mark = 0

    @staticmethod
    def _new_reader() -> HeadReader:
        return HeadReader(_parse_request_line, 414, 431, 400, skip_crlf=True)

    @property
    def error(self) -> ProtocolError | None:
        """The error found so far (kept: once failed, the parser stays failed)."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events (a partial line or chunk-CRLF)."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """Between messages with nothing pending: a close here loses no request."""
        return self._state == _HEAD and (self._reader is None or self._reader.idle) and not self._buf

    def feed(self, data: bytes) -> list[RequestEvent]:
        """Events for `data` (may be b""). Raises ProtocolError on the first violation.

        When an error follows, in the same call, a message that already ended, the events
        of the complete messages are returned and the error is raised by the next call
        (and is visible at once as `error`). Events of the message in which the error
        lies are never returned from the call that finds it, so bytes that arrived
        together are forwarded only if they all passed (SPEC §5)."""
        if self._error is not None:
            raise ProtocolError(self._error.status, self._error.reason)
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
        else:
            buf = data
        events: list[RequestEvent] = []
        self._mark = 0
        try:
            pos = self._run(buf, events)
        except ProtocolError as exc:
            self._error, self._state, self._buf = exc, _FAILED, bytearray()
            if not self._mark:
                raise
            del events[self._mark:]
            return events
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < len(buf):
            self._buf = bytearray(buf[pos:])
        return events

    def whole(self, data: bytes) -> RequestHead | None:
        """The fast path of `feed` for the usual read: an idle parser and `data` exactly one complete request head
        without a body.  Returns that head (the parser stays idle, as `feed` would leave it), or None: then call
        `feed(data)`, which gives these bytes their verdict (an invalid head is never accepted here; it is left to
        `feed` to refuse with its status and reason)."""
        if self._state != _HEAD or self._buf or self._reader is not None:
            return None
        head = _WHOLE.get(data) if data.__class__ is bytes else None
        if head is not None:
            return head
        try:
            found = _fast_head(data, 0)
        except ProtocolError:
            return None
        if found is None:
            return None
        head, end = found
        if end != len(data) or head.framing is not F_NONE or head.upgrade:
            return None  # an upgrade request: `feed` holds what follows it
        if data.__class__ is bytes and end <= _WHOLE_BYTES:
            if len(_WHOLE) >= _WHOLE_MAX:
                _WHOLE.clear()
            _WHOLE[data] = head
        return head

    def switched(self) -> bytes:
        """A 101 came: the bytes held since the upgrade head are the new protocol's; the parser is done."""
        rest, self._buf = bytes(self._buf), bytearray()
        self._error = ProtocolError(400, "the connection switched protocols")
        self._state = _FAILED
        return rest

    def not_switched(self) -> None:
        """No 101: HTTP/1.1 goes on; the next `feed` (b"" will do) parses the held bytes."""
        if self._state == _HELD:
            self._state = _HEAD

    def feed_eof(self) -> list[RequestEvent]:
        """The client closed its sending side: fine between messages, else a 400."""
        if self._error is not None:
            raise ProtocolError(self._error.status, self._error.reason)
        if not self.idle:
            self._error = ProtocolError(400, "connection closed in the middle of a request")
            self._state = _FAILED
            raise self._error
        return []

    def _run(self, buf: bytes | bytearray, events: list[RequestEvent]) -> int:
        pos, end = 0, len(buf)
        while True:
            state = self._state
            if state == _HEAD:
                if pos >= end:  # nothing of the next head yet
                    return pos
                found = _fast_head(buf, pos) if self._reader is None else None
                if found is not None:
                    head, pos = found
                else:
                    reader = self._reader
                    if reader is None:
                        reader = self._reader = self._new_reader()
                    pos = reader.read(buf, pos)
                    if not reader.complete:
                        return pos
                    head = _slow_head(reader)
                    self._reader = None
                events.append(head)
                if head.framing is F_CHUNKED:
                    self._chunked = ChunkedDecoder(400, 431)
                    self._state = _CHUNKED
                elif head.content_length:
                    self._remaining = head.content_length
                    self._state = _LENGTH
                else:
                    self._end(events, [])
                    if head.upgrade:  # what follows may be another protocol: hold it
                        self._state = _HELD
                        return pos
            elif state == _LENGTH:
                if pos >= end:
                    return pos
                n = min(self._remaining, end - pos)
                events.append(BodyChunk(bytes(buf[pos:pos + n])))
                pos += n
                self._remaining -= n
                if not self._remaining:
                    self._end(events, [])
            elif state == _HELD:
                return pos
            else:
                assert self._chunked is not None
                pos = self._chunked.decode(buf, pos, events)
                if not self._chunked.complete:
                    return pos
                self._end(events, self._chunked.trailers)

    def _end(self, events: list[RequestEvent], trailers: Fields) -> None:
        events.append(EndOfMessage(trailers))
        self._mark = len(events)
        self._state = _HEAD
        self._chunked = None


PROXY_OWNED = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


_DROP = FRAMING_FIELDS | PROXY_OWNED  # always re-stated by us
_DROP_HOP = _DROP | HOP_BY_HOP


def serialize_request_head(head: RequestHead, extra_headers: Iterable[tuple[bytes, bytes]] = (),
                           drop_hop_by_hop: bool = True, keep_underscores: bool = False) -> bytes:
    """The head to send upstream: `METHOD path HTTP/1.1`, the client's validated field lines minus framing,
    X-Forwarded-For/-Proto, (by default) hop-by-hop fields and (unless `keep_underscores`) fields with `_` in their
    name, then `extra_headers`, then the framing we parsed. Host is the client's, or the absolute-form authority; a
    `host` in extra_headers replaces it. Lines are kept as received (SPEC §5: rebuilt from validated parts, never
    relayed raw).  The result is remembered on the head for the same arguments (a head remembered by
    `RequestParser.whole` comes back)."""
    wire = head._wire
    if (wire is not None and wire[1] is keep_underscores and drop_hop_by_hop
            and wire[0] == extra_headers):
        return wire[2]
    parts: list[bytes] = []
    host_in_extra = render_extra(parts, extra_headers)
    extra = b"".join(parts)
    lines = head._lines
    restate_host = host_in_extra or not head._host_field or head.target != head.path
    if lines is None:
        fields = _render_by_hand(head, drop_hop_by_hop, keep_underscores)
    elif not head._may_drop and not restate_host and (keep_underscores or not head._underscore):
        fields = head._section
    else:
        drop: frozenset[bytes] = _DROP_HOP | head._connection if drop_hop_by_hop else _DROP
        if restate_host:
            drop = drop | {b"host"}
        fields = forward_fields(lines, head.headers, drop, keep_underscores)
    # An HTTP/1.0 request may come without Host: it goes on as HTTP/1.0 without one,
    # never as HTTP/1.1 with an empty Host, which RFC 9110 §4.2.1 (and we) refuse.
    version = b"HTTP/1.1" if head.host or host_in_extra else b"HTTP/1.0"
    if restate_host and not host_in_extra and head.host:
        fields = b"host: %s\r\n%s" % (head.host, fields)
    framing = head.framing
    if framing is F_LENGTH:
        tail = b"content-length: %d\r\n" % head.content_length if head.content_length is not None else b""
    elif framing is F_CHUNKED:
        tail = b"transfer-encoding: chunked\r\n"
    else:
        tail = b""  # no dict lookup: an Enum's hash is a Python-level call per request
    out = b"%s %s %s\r\n%s%s%s\r\n" % (head.method, head.path, version, fields, extra, tail)
    if drop_hop_by_hop and extra_headers.__class__ is tuple:
        head._wire = (extra_headers, keep_underscores, out)
    return out


def _render_by_hand(head: RequestHead, drop_hop_by_hop: bool, keep_underscores: bool) -> bytes:
    """Fields of a RequestHead built by hand (no lines): rendered from `headers`."""
    drop: set[bytes] = set(_DROP)
    drop.add(b"host")
    if drop_hop_by_hop:
        drop |= HOP_BY_HOP | connection_named(head.headers)
    if not keep_underscores:
        drop.update(name for name, _ in head.headers if b"_" in name)
    parts: list[bytes] = []
    render_fields(parts, head.headers, drop)
    return b"".join(parts)

