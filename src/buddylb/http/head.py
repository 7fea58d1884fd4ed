"""Whole-head scanning and field indexing shared by requests and responses (RFC 9112 §2,
§5): the fast half of the HTTP layer.

Owns: `scan_head`, which accepts a complete head already in the buffer with a handful of
C-level byte operations (no regex, no per-byte Python), `index_fields`, which turns the
validated field lines into the `(lowercased name, value)` list plus what the head checks
and the forwarding need, and `forward_fields`, which rebuilds the field section to
forward from the validated lines. It must never decide a verdict of its own: whenever
`scan_head` or `index_fields` is not sure a head is valid and within every SPEC §5
limit, it returns None and the line-by-line reader (`framing.HeadReader`) reads the same
bytes and decides, with the precise status and reason. So a verdict never depends on
which path ran, nor on how the bytes were split.

Theory of operation. A head is valid at the byte level when (1) every byte is VCHAR,
obs-text, SP, HTAB, or a CR immediately followed by LF (`translate` deletes the allowed
bytes: anything left is a CTL, NUL or DEL; equal counts of CR, LF and CRLF leave no bare
CR or LF), and (2) each field line has a colon after a non-empty token (no whitespace before the
colon, no obs-fold: both would put a space in the "name"; the names of all lines are
checked by one `translate`). Both sides of
the colon are then exactly RFC 9112 §5's `field-name ":" OWS field-value OWS`.
Forwarding keeps each validated line as received (names in the sender's case) and drops
whole lines; nothing the client sent is relayed unless it passed these checks.
"""
from __future__ import annotations

from typing import Sequence

from buddylb.http import limits

__all__ = ["FieldIndex", "forward_fields", "index_fields", "scan_head", "TCHAR_BYTES"]

TCHAR_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Bytes a head may hold besides CRLF pairs: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
_HEAD_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])
VALUE_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])

# Fields the head checks read (RFC 9112 §3.2, §6, §9.3; RFC 9110 §10.1.1).
SPECIAL = frozenset({b"host", b"transfer-encoding", b"content-length", b"connection", b"expect"})
# Fields a forwarder may drop: hop-by-hop (RFC 9110 §7.6.1, SPEC §5), framing (re-stated
# from what we parsed), the proxy's own X-Forwarded-* and Host (re-stated in absolute-form).
MAY_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade",
                      b"http2-settings", b"content-length", b"transfer-encoding",
                      b"x-forwarded-for", b"x-forwarded-proto"})


def scan_head(buf: bytes | bytearray, pos: int) -> tuple[bytes, bytes, list[bytes], int] | None:
    """(start line, field section with its CRLFs, field lines, end) of a complete head
    at buf[pos:] that is clean at the byte level and within the size limits; None when
    the head is incomplete or anything is doubtful (the caller's line reader decides)."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0 or buf[pos] == 13:  # incomplete, or an empty line before the start line
        return None
    head = buf[pos:end + 2]
    if type(head) is not bytes:
        head = bytes(head)
    crlf = head.count(b"\r\n")
    if head.translate(None, _HEAD_BYTES) or head.count(b"\r") != crlf or head.count(b"\n") != crlf:
        return None
    nl = head.find(b"\r\n")
    if nl > limits.MAX_REQUEST_LINE or crlf - 1 > limits.MAX_HEADER_FIELDS:
        return None
    section = head[nl + 2:]
    size = len(section)
    if size > limits.MAX_HEADER_SECTION:
        return None
    lines = section.split(b"\r\n")
    lines.pop()  # the section ends with CRLF: the last piece is empty
    if size > limits.MAX_HEADER_LINE + 2 and max(map(len, lines)) > limits.MAX_HEADER_LINE:
        return None
    return head[:nl], section, lines, end + 4


class FieldIndex:
    """What one pass over the field lines learns: the fields (lowercased names, values
    without OWS), the values of the SPECIAL fields, and whether any line is one a
    forwarder may drop (MAY_DROP) or has `_` in its name."""

    __slots__ = ("fields", "special", "may_drop", "underscore")

    def __init__(self, fields: list[tuple[bytes, bytes]], special: dict[bytes, list[bytes]],
                 may_drop: bool, underscore: bool) -> None:
        self.fields = fields
        self.special = special
        self.may_drop = may_drop
        self.underscore = underscore


def index_fields(lines: Sequence[bytes]) -> FieldIndex | None:
    """The FieldIndex of byte-clean field lines (see `scan_head`), or None when a line
    is not `token ":" value` (the line reader then names the fault)."""
    fields = []
    names = []
    special: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name:
            return None
        names.append(name)
        name = name.lower()
        value = value.strip(b" \t")
        fields.append((name, value))
        if name in SPECIAL:
            if name in special:
                special[name].append(value)
            else:
                special[name] = [value]
    joined = b"".join(names)
    if joined.translate(None, TCHAR_BYTES):  # a space, a quote... or a line without a colon
        return None
    may_drop = not MAY_DROP.isdisjoint([name for name, _ in fields]) if fields else False
    return FieldIndex(fields, special, may_drop, b"_" in joined)


def forward_fields(lines: Sequence[bytes], fields: Sequence[tuple[bytes, bytes]],
                   drop: frozenset[bytes] | set[bytes], keep_underscores: bool) -> bytes:
    """The validated lines, as received, minus those whose name is in `drop` (and, unless
    `keep_underscores`, those whose name has `_`: SPEC §5, as nginx does), with CRLFs."""
    if keep_underscores:
        kept = [line for line, (name, _) in zip(lines, fields) if name not in drop]
    else:
        kept = [line for line, (name, _) in zip(lines, fields)
                if name not in drop and b"_" not in name]
    if not kept:
        return b""
    kept.append(b"")
    return b"\r\n".join(kept)
