"""HTTP/1.1 message framing shared by requests and responses (RFC 9112): field
sections, the chunked coding, body events, and the rendering of fields.

Owns: the field-line grammar (RFC 9112 §5, RFC 9110 §5.5), the incremental head reader
with the SPEC §5 limits, the chunked decoder and encoder (RFC 9112 §7.1), the
Content-Length and Transfer-Encoding rules both directions share (RFC 9110 §8.6,
RFC 9112 §6), and the hop-by-hop field set (RFC 9110 §7.6.1). `request.py` and
`response.py` build on it; the proxy uses only what they re-export. It must never
touch a socket, a clock or asyncio, and never decide a status itself: every reader is
told by its caller which status a violation produces (400/414/431 for requests, 502
for responses).

Theory of operation. `HeadReader` reads a head one line at a time (`bytes.find(b"\\n")`)
and validates each line as soon as its LF arrives, by one compiled regex; a line still
arriving is only measured, so the limits hold however the bytes are split and the
verdict depends on the bytes alone, never on how they were split (sizes are checked
before syntax for that reason). It is the slow path and the judge: when a whole head is
already buffered, `head.read_head` accepts it in one pass (native when compiled), and
anything it is unsure of comes back here to be decided, with the precise reason.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from buddylb.errors import ProtocolError
from buddylb.http import limits
from buddylb.http.head import TCHAR_BYTES, VALUE_BYTES

__all__ = ["BodyChunk", "EndOfMessage", "Fields", "Framing", "HOP_BY_HOP", "LAST_CHUNK",
           "encode_chunk", "encode_last_chunk"]

TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"  # RFC 9110 §5.6.2
TOKEN = re.compile(rb"[%s]+" % TCHAR)
# field-line = field-name ":" OWS field-value OWS (RFC 9112 §5; values RFC 9110 §5.5:
# VCHAR, obs-text, SP, HTAB). No space before ":", no CR/LF/NUL/CTL anywhere.
_FIELD_LINE = re.compile(rb"([%s]+):([\t\x20-\x7e\x80-\xff]*)" % TCHAR)
_DIGITS = re.compile(rb"[0-9]+")
# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1, §7.1.1)
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[%s]+(?:[ \t]*=[ \t]*(?:[%s]+|%s))?)*)"
    % (TCHAR, TCHAR, _QUOTED))
_MAX_CHUNK_LINE = limits.MAX_CHUNK_SIZE_DIGITS + limits.MAX_CHUNK_EXTENSION

Fields = list[tuple[bytes, bytes]]


class Framing(enum.Enum):
    """How the body of a message is delimited (RFC 9112 §6.3)."""

    NONE = "none"  # no body at all
    LENGTH = "content-length"  # exactly `content_length` bytes
    CHUNKED = "chunked"  # chunked transfer coding
    CLOSE = "close"  # responses only: the body runs until the server closes


# The members as module names, for the per-request code: `Framing.NONE` goes through
# EnumType's Python-level attribute hook (~0.1 µs, several times per request); a module
# global is a cached dict read in the compiled modules.
F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE = Framing.NONE, Framing.LENGTH, Framing.CHUNKED, Framing.CLOSE


def field_values(headers: Fields, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n == name]


_FRAMING_AND_ROUTING = frozenset({b"host", b"transfer-encoding", b"content-length",
                                  b"connection", b"expect"})


def special_fields(headers: Fields) -> dict[bytes, list[bytes]]:
    """Values of the fields the head checks look at, collected in one pass."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if name in _FRAMING_AND_ROUTING:
            found.setdefault(name, []).append(value)
    return found


def list_tokens(values: list[bytes], status: int, what: str) -> list[bytes]:
    """Elements of a comma-separated token list (RFC 9110 §5.6.1), lowercased; empty
    elements are ignored, anything that is not a token is refused."""
    out = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(b" \t")
            if not item:
                continue
            if TOKEN.fullmatch(item) is None:
                raise ProtocolError(status, f"invalid {what} element {item!r}")
            out.append(item.lower())
    return out


_CONNECTION_SETS: dict[bytes, frozenset[bytes]] = {}  # one Connection line -> its tokens
_MAX_CONNECTION_SETS = 256


def connection_tokens(values: list[bytes], status: int) -> frozenset[bytes]:
    """The Connection field's tokens (`list_tokens`, as a set).  A single line's verdict
    is remembered (clients and servers repeat `keep-alive` / `close`: a bounded cache;
    errors are never cached, they raise every time, with `status`)."""
    if len(values) != 1:
        return frozenset(list_tokens(values, status, "Connection"))
    found = _CONNECTION_SETS.get(values[0])
    if found is None:
        found = frozenset(list_tokens(values, status, "Connection"))
        if len(_CONNECTION_SETS) < _MAX_CONNECTION_SETS:
            _CONNECTION_SETS[values[0]] = found
    return found


@dataclass(slots=True, init=False)
class BodyChunk:
    """Payload bytes of the current message (de-chunked when chunked)."""

    data: bytes

    def __init__(self, data: bytes) -> None:  # written out: the compiled module compiles it
        self.data = data


@dataclass(slots=True, init=False)
class EndOfMessage:
    """The current message is complete; `trailers` holds the trailer section, if any."""

    trailers: Fields

    def __init__(self, trailers: Fields | None = None) -> None:
        self.trailers = [] if trailers is None else trailers


class HeadReader:
    """Reads a start line (optional) and a field section one line at a time (RFC 9112
    §2.1, §5); also reads trailer sections (RFC 9112 §7.1.2). Statuses are the caller's:
    requests get 414/431/400, responses 502."""

    __slots__ = ("start", "lines", "complete", "_parse_start", "_start_status",
                 "_fields_status", "_bad", "_size", "_skip_crlf")

    def __init__(self, parse_start: Callable[[bytes], object] | None, start_status: int,
                 fields_status: int, bad: int, skip_crlf: bool = False) -> None:
        self.start: object = None
        self.lines: list[bytes] = []  # validated field lines, without their CRLF
        self.complete = False
        self._parse_start = parse_start
        self._start_status = start_status
        self._fields_status = fields_status
        self._bad = bad
        self._size = 0
        self._skip_crlf = skip_crlf  # RFC 9112 §2.2: one empty line before the request

    @property
    def idle(self) -> bool:
        return self._parse_start is not None and self.start is None

    def read(self, buf: bytes | bytearray, pos: int) -> int:
        """Consume the complete lines of buf[pos:]; return the new position."""
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                self._measure_partial(buf, pos)
                return pos
            line = bytes(buf[pos:nl])
            pos = nl + 1
            crlf = line[-1:] == b"\r"
            size = len(line) - crlf
            if self._parse_start is not None and self.start is None:
                if line == b"\r" and self._skip_crlf:
                    self._skip_crlf = False
                    continue
                if size > limits.MAX_REQUEST_LINE:
                    raise ProtocolError(self._start_status, "start line too long")
                if not crlf:
                    raise ProtocolError(self._bad, "bare LF in start line")
                self.start = self._parse_start(line[:-1])
                continue
            if line == b"\r":
                self.complete = True
                return pos
            self._add_field(line, size, crlf)

    @property
    def fields(self) -> Fields:
        """The field lines read, as (lowercased name, value without OWS)."""
        return [(name.lower(), value.strip(b" \t"))
                for name, _, value in (line.partition(b":") for line in self.lines)]

    @property
    def section(self) -> bytes:
        """The field lines read, each with its CRLF (what `head.forward_fields` keeps)."""
        return b"".join([line + b"\r\n" for line in self.lines])

    def _add_field(self, line: bytes, size: int, crlf: bool) -> None:
        # Sizes first, syntax second: the verdict must not depend on the split.
        self._size += size + 2
        if size > limits.MAX_HEADER_LINE or self._size > limits.MAX_HEADER_SECTION:
            raise ProtocolError(self._fields_status, "header field or section too large")
        if len(self.lines) >= limits.MAX_HEADER_FIELDS:
            raise ProtocolError(self._fields_status, "too many header fields")
        if not crlf:
            raise ProtocolError(self._bad, "bare LF in header section")
        if _FIELD_LINE.fullmatch(line, 0, size) is None:
            raise ProtocolError(self._bad, _diagnose_field_line(line[:size]))
        self.lines.append(line[:size])

    def _measure_partial(self, buf: bytes | bytearray, pos: int) -> None:
        """Bound the wait for a LF: a line that already exceeds a limit is refused now."""
        size = len(buf) - pos
        if size and buf[-1] == 13:
            size -= 1
        if not size:
            return
        if self._parse_start is not None and self.start is None:
            if size > limits.MAX_REQUEST_LINE:
                raise ProtocolError(self._start_status, "start line too long")
        elif size > limits.MAX_HEADER_LINE or self._size + size + 2 > limits.MAX_HEADER_SECTION:
            raise ProtocolError(self._fields_status, "header field or section too large")


def _diagnose_field_line(content: bytes) -> str:
    if content[:1] in (b" ", b"\t"):
        return "obs-fold or whitespace before a field line (RFC 9112 §5.2)"
    name, colon, value = content.partition(b":")
    if not colon:
        return "field line without a colon"
    if not name:
        return "empty field name"
    if name[-1:] in (b" ", b"\t"):
        return "whitespace before the colon (RFC 9112 §5.1)"
    if TOKEN.fullmatch(name) is None:
        return "invalid character in field name"
    if b"\r" in value:
        return "bare CR in field value"
    return "NUL or control character in field value (RFC 9110 §5.5)"


class ChunkedDecoder:
    """De-chunks a body (RFC 9112 §7.1): BodyChunk events, then `complete` with trailers."""

    __slots__ = ("complete", "_state", "_remaining", "_trailers", "_bad", "_fields_status")

    _SIZE, _DATA, _DATA_CRLF, _TRAILERS = range(4)

    def __init__(self, bad: int, fields_status: int) -> None:
        self.complete = False
        self._state = self._SIZE
        self._remaining = 0
        self._trailers: HeadReader | None = None
        self._bad = bad
        self._fields_status = fields_status

    @property
    def trailers(self) -> Fields:
        return self._trailers.fields if self._trailers is not None else []

    def decode(self, buf: bytes | bytearray, pos: int, events: list[Any]) -> int:
        end = len(buf)
        while pos < end:
            state = self._state
            if state == self._DATA:
                n = min(self._remaining, end - pos)
                events.append(BodyChunk(bytes(buf[pos:pos + n])))
                pos += n
                self._remaining -= n
                if not self._remaining:
                    self._state = self._DATA_CRLF
            elif state == self._DATA_CRLF:  # chunk-data CRLF
                if buf[pos] != 13 or (end - pos > 1 and buf[pos + 1] != 10):
                    raise ProtocolError(self._bad, "missing CRLF after chunk data")
                if end - pos < 2:
                    return pos
                pos += 2
                self._state = self._SIZE
            elif state == self._SIZE:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    size = end - pos - (buf[-1] == 13)
                    if size > _MAX_CHUNK_LINE:
                        raise ProtocolError(self._bad, "chunk size line too long")
                    return pos
                self._size_line(buf, pos, nl)
                pos = nl + 1
            else:
                assert self._trailers is not None
                pos = self._trailers.read(buf, pos)
                self.complete = self._trailers.complete
                return pos
        return pos

    def _size_line(self, buf: bytes | bytearray, pos: int, nl: int) -> None:
        crlf = nl > pos and buf[nl - 1] == 13
        stop = nl - 1 if crlf else nl
        if stop - pos > _MAX_CHUNK_LINE:
            raise ProtocolError(self._bad, "chunk size line too long")
        if not crlf:
            raise ProtocolError(self._bad, "bare LF after chunk size")
        match = _CHUNK_LINE.fullmatch(buf, pos, stop)
        if match is None:
            raise ProtocolError(self._bad, "invalid chunk size or chunk extension")
        digits, ext = match[1], match[2]
        if len(digits) > limits.MAX_CHUNK_SIZE_DIGITS or len(ext) > limits.MAX_CHUNK_EXTENSION:
            raise ProtocolError(self._bad, "chunk size or chunk extension too long")
        size = int(digits, 16)
        if size > limits.MAX_CHUNK_SIZE:
            raise ProtocolError(self._bad, "chunk size overflow")
        if size:
            self._remaining = size
            self._state = self._DATA
        else:  # last-chunk: a trailer section follows
            self._trailers = HeadReader(None, self._bad, self._fields_status, self._bad)
            self._state = self._TRAILERS


def parse_content_length(values: list[bytes], status: int) -> int:
    """RFC 9110 §8.6: 1*DIGIT; identical duplicates (lines or list members) fold into one."""
    if len(values) == 1:  # the usual case, decided without a set (bytes.isdigit: ASCII only)
        text = values[0]
        if text.isdigit() and len(text) <= limits.MAX_CONTENT_LENGTH_DIGITS:
            return int(text)
    seen = {item.strip(b" \t") for value in values for item in value.split(b",")}
    if len(seen) != 1:
        raise ProtocolError(status, "differing Content-Length values")
    text = seen.pop()
    if _DIGITS.fullmatch(text) is None or len(text) > limits.MAX_CONTENT_LENGTH_DIGITS:
        raise ProtocolError(status, "malformed Content-Length")
    return int(text)


def check_transfer_encoding(values: list[bytes], status: int, unsupported: int) -> None:
    """Only exactly `chunked` is accepted (SPEC §5). RFC 9112 §6.3: chunked not final ->
    `status` (400 for requests); RFC 9112 §6.1: well-formed codings we do not implement
    before a final chunked -> `unsupported` (501 for requests)."""
    if len(values) == 1 and values[0].lower() == b"chunked":
        return
    codings = [c.strip(b" \t").lower() for v in values for c in v.split(b",")]
    if (codings[-1] == b"chunked" and codings.count(b"chunked") == 1
            and all(TOKEN.fullmatch(c) for c in codings)):
        raise ProtocolError(unsupported, "transfer codings other than chunked are not implemented")
    raise ProtocolError(status, "Transfer-Encoding must be exactly chunked")


HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te",
                        b"upgrade", b"http2-settings"})  # RFC 9110 §7.6.1, SPEC §5
FRAMING_FIELDS = frozenset({b"content-length", b"transfer-encoding"})


def connection_named(headers: Fields) -> set[bytes]:
    """Field names listed in Connection (RFC 9110 §7.6.1); invalid elements are skipped."""
    named = set()
    for value in field_values(headers, b"connection"):
        for item in value.split(b","):
            item = item.strip(b" \t").lower()
            if TOKEN.fullmatch(item):
                named.add(item)
    return named


def render_fields(parts: list[bytes], headers: Iterable[tuple[bytes, bytes]],
                  drop: frozenset[bytes] | set[bytes]) -> None:
    for name, value in headers:
        if name not in drop:
            parts.append(b"%s: %s\r\n" % (name, value))


def render_extra(parts: list[bytes], extra: Iterable[tuple[bytes, bytes]]) -> bool:
    """Proxy-chosen fields; checked so that no value can inject a line. True when one
    of them is Host (it then replaces ours)."""
    host = False
    for name, value in extra:
        if not name or name.translate(None, TCHAR_BYTES) or value.translate(None, VALUE_BYTES):
            raise ValueError(f"refusing to emit header {name!r}: {value!r}")
        parts.append(b"%s: %s\r\n" % (name, value))
        if len(name) == 4 and name.lower() == b"host":
            host = True
    return host


LAST_CHUNK = b"0\r\n\r\n"
# Trailer fields never forwarded (RFC 9110 §6.5.1: framing, routing, hop-by-hop).
_TRAILER_DROP = FRAMING_FIELDS | HOP_BY_HOP | {b"host", b"trailer"}


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; b"" for empty data (an empty chunk would end it)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def encode_last_chunk(trailers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """The last chunk with the (already validated) trailers, minus forbidden fields."""
    if not trailers:
        return LAST_CHUNK
    parts = [b"0\r\n"]
    render_fields(parts, trailers, _TRAILER_DROP)
    parts.append(b"\r\n")
    return b"".join(parts)
