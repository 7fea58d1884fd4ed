"""Whole-head scanning and field indexing shared by requests and responses (RFC 9112 §2,
§5): the fast half of the HTTP layer.

Owns: `read_head`, which accepts a complete head already in the buffer in one pass —
compiled, a native byte loop (`_scan_native`, Cython pure-Python mode); from source, a
handful of C-level bytes operations (`_split_head` + `index_fields`, no regex, no
per-byte Python) — and yields the `(lowercased name, value)` fields plus what the head
checks and the forwarding need; and `forward_fields`, which rebuilds the field section
to forward from the validated lines. It must never decide a verdict of its own:
whenever it is not sure a head is valid and within every SPEC §5 limit, it returns None
and the line-by-line reader (`framing.HeadReader`) reads the same bytes and decides,
with the precise status and reason. So a verdict never depends on which path ran, nor
on how the bytes were split. The two scanners are held equal by
tests/http/test_head_scanners.py (in either mode, both run).

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

from typing import Any, Sequence

from buddylb.http import limits

try:  # Cython's pure-Python mode: `cython.compiled` is True only in the compiled module
    import cython
except ImportError:  # running from source without Cython installed
    COMPILED = False
else:
    COMPILED = cython.compiled

__all__ = ["COMPILED", "FieldIndex", "forward_fields", "index_fields", "read_head", "TCHAR_BYTES"]

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


# Byte classes for the compiled scanner: 0 forbidden (CTL, NUL, DEL), 1 tchar, 2 other
# field-value byte (SP, HTAB, VCHAR, obs-text), 3 CR, 4 LF.
_CLASS = bytes(1 if c in TCHAR_BYTES else 3 if c == 13 else 4 if c == 10
               else 2 if c in VALUE_BYTES else 0 for c in range(256))

Head = tuple  # (start line, field section, field lines, FieldIndex, end)


def read_head(buf: bytes | bytearray, pos: int) -> Head | None:
    """(start line, field section with its CRLFs, field lines, FieldIndex, end) of a
    complete head at buf[pos:] that is clean and within the limits, else None (the
    caller's line reader decides). Compiled: one native pass (`_scan_native`); from
    source: `_split_head` and `index_fields`, a few C-level bytes operations."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0 or buf[pos] == 13:  # incomplete, or an empty line before the start line
        return None
    head = buf[pos:end + 2]
    if type(head) is not bytes:
        head = bytes(head)
    if COMPILED:
        return _scan_native(head, end + 4)
    return _scan_portable(head, end + 4)


def _scan_portable(head: bytes, end: int) -> Head | None:
    split = _split_head(head)
    if split is None:
        return None
    start, section, lines = split
    index = index_fields(lines)
    if index is None:
        return None
    return start, section, lines, index, end


def _scan_native(head: bytes, end: int) -> Head | None:
    """The compiled scanner: one pass over the bytes with C types (Cython pure-Python
    mode; it also runs from source, byte by byte, which only the tests do). It accepts
    exactly what `_scan_portable` accepts and returns the same values."""
    p: cython.p_uchar = head
    t: cython.p_uchar = _CLASS
    n: cython.Py_ssize_t = len(head)
    max_start: cython.Py_ssize_t = limits.MAX_REQUEST_LINE
    max_line: cython.Py_ssize_t = limits.MAX_HEADER_LINE
    max_fields: cython.Py_ssize_t = limits.MAX_HEADER_FIELDS
    i: cython.Py_ssize_t = 0
    ls: cython.Py_ssize_t
    ne: cython.Py_ssize_t
    vs: cython.Py_ssize_t
    ve: cython.Py_ssize_t
    body: cython.Py_ssize_t
    count: cython.Py_ssize_t = 0
    c: cython.uchar
    k: cython.uchar
    upper: cython.bint
    under: cython.bint = False
    may_drop: cython.bint = False
    while i < n:  # the start line: any clean byte up to its CRLF
        k = t[p[i]]
        if k == 3:
            break
        if k == 0 or k == 4:
            return None
        i += 1
    if i > max_start or i + 1 >= n or p[i + 1] != 10:
        return None
    start = head[:i]
    i += 2
    body = i
    fields: list = []
    lines: list = []
    special: dict = {}
    while i < n:
        ls = i
        upper = False
        while i < n:  # field-name = token
            c = p[i]
            if t[c] != 1:
                break
            if 65 <= c <= 90:
                upper = True
            elif c == 95:
                under = True
            i += 1
        if i == ls or i >= n or p[i] != 58:  # ":" right after a non-empty token
            return None
        ne = i
        i += 1
        while i < n and (p[i] == 32 or p[i] == 9):  # OWS
            i += 1
        vs = ve = i
        while i < n:  # field-value, its end without trailing OWS
            c = p[i]
            k = t[c]
            if k == 3:
                break
            if k == 0 or k == 4:
                return None
            i += 1
            if c != 32 and c != 9:
                ve = i
        if i + 1 >= n or p[i + 1] != 10 or i - ls > max_line:
            return None
        count += 1
        if count > max_fields:
            return None
        name = head[ls:ne]
        if upper:
            name = name.lower()
        value = head[vs:ve]
        lines.append(head[ls:i])
        fields.append((name, value))
        if name in SPECIAL:
            if name in special:
                special[name].append(value)
            else:
                special[name] = [value]
        if name in MAY_DROP:
            may_drop = True
        i += 2
    if n - body > limits.MAX_HEADER_SECTION:
        return None
    return start, head[body:], lines, FieldIndex(fields, special, may_drop, under), end


def _split_head(head: bytes) -> tuple[bytes, bytes, list[bytes]] | None:
    """`head` is the start line and field lines, each with its CRLF."""
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
    return head[:nl], section, lines


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
    """The FieldIndex of byte-clean field lines (see `_split_head`), or None when a line
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


def head_size(head: Any) -> int:
    """Bytes of the head as received, for byte counters (metrics, access log): request line, one `name: value` line
    per field, the empty line.  Optional whitespace the parser dropped around values is not counted (a few bytes at
    most per field)."""
    size = len(head.method) + len(head.target) + 12  # 2 SP, "HTTP/x.y", CRLF
    for name, value in head.headers:
        size += len(name) + len(value) + 4  # ": " and CRLF
    return size + 2
