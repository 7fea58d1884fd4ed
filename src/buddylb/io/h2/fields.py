"""One HTTP/2 request's fields in, the HTTP/1.1 request head out (RFC 9113 §8), sans-IO.

Why a translation to HTTP/1.1 bytes: the L7 exchange machine (`io.l7.exchange`) already
validates, classifies, decides and forwards HTTP/1.1 requests; feeding it a head built
here means an h2 stream obeys every SPEC §5 rule (limits, Host syntax, `_` names,
hop-by-hop, X-Forwarded-*) through the very same parser and head builder, and a
decision never depends on the protocol the client spoke.

What makes the translation safe (no h2 -> h1 smuggling): every field is checked here
first, and anything that could change the meaning of the HTTP/1.1 text is refused as a
malformed request (a stream error PROTOCOL_ERROR, RFC 9113 §8.1.1): CR, LF or NUL
anywhere, names that are not lowercase tokens, leading or trailing whitespace in values,
a space in `:method` or `:path`, connection-specific fields (§8.2.2), `te` other than
`trailers`, pseudo-fields that are unknown, repeated, missing or after a regular field
(§8.3), and `:authority` disagreeing with `host`.  Framing is ours alone: the client's
`content-length` (checked against DATA by the h2 library) becomes the only framing
field, and a body without one is sent chunked.  The parser then re-checks the result
as it checks any client's bytes.
"""
from __future__ import annotations

import re

# RFC 9113 §8.2.2: connection-specific fields make a request malformed
CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority"})
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")  # a token, lowercase (RFC 9110 §5.1, RFC 9113 §8.2.1)
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # NUL, CR, LF and the other controls (HTAB allowed)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(rb"[\x21-\x7e]+")  # no space, no control: it becomes the request line's target


class Malformed(Exception):
    """The request is malformed (RFC 9113 §8.1.1): reset the stream with PROTOCOL_ERROR."""


class Request:
    """What the exchange machine needs of a checked h2 request."""

    __slots__ = ("method", "head", "has_length", "body")

    def __init__(self, method: bytes, head: bytes, has_length: bool, body: bool) -> None:
        self.method = method
        self.head = head  # the HTTP/1.1 head, CRLF CRLF included
        self.has_length = has_length  # content-length framing (else chunked when a body comes)
        self.body = body  # a body may follow (the HEADERS frame did not end the stream)


def check_request(headers: list[tuple[bytes, bytes]], end_stream: bool) -> Request:
    """The HTTP/1.1 head for one h2 request's decoded field list; raises Malformed."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    host: bytes | None = None
    length: bytes | None = None
    for name, value in headers:
        if _VALUE_BAD.search(value) is not None:
            raise Malformed(f"invalid character in the value of {name[:40]!r}")
        if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
            raise Malformed(f"whitespace around the value of {name[:40]!r}")
        if name[:1] == b":":
            if regular or cookies or host is not None or length is not None:
                raise Malformed("pseudo-header field after a regular field")
            if name not in REQUEST_PSEUDO:
                raise Malformed(f"unknown pseudo-header field {name[:40]!r}")
            if name in pseudo:
                raise Malformed(f"repeated pseudo-header field {name!r}")
            pseudo[name] = value
            continue
        if _NAME.fullmatch(name) is None:
            raise Malformed(f"invalid field name {name[:40]!r} (uppercase, empty or not a token)")
        if name in CONNECTION_SPECIFIC:
            raise Malformed(f"connection-specific field {name.decode()!r}")
        if name == b"te":
            if value.lower() != b"trailers":
                raise Malformed("te other than trailers")
            continue  # hop-by-hop: never forwarded
        if name == b"cookie":
            cookies.append(value)  # RFC 9113 §8.2.3: crumbs are joined with "; "
        elif name == b"host":
            if host is not None:
                raise Malformed("repeated host field")
            host = value
        elif name == b"content-length":
            if length is not None and value != length:
                raise Malformed("conflicting content-length fields")
            length = value
        else:
            regular.append((name, value))
    method = pseudo.get(b":method")
    if method is None or _TOKEN.fullmatch(method) is None:
        raise Malformed("missing or invalid :method")
    if method == b"CONNECT":
        # plain CONNECT has no :scheme/:path; a reverse proxy refuses it like HTTP/1.1 does (405)
        path = b"/"
        if b":scheme" in pseudo or b":path" in pseudo or b":authority" not in pseudo:
            raise Malformed("CONNECT with :scheme or :path, or without :authority")
    else:
        scheme, path = pseudo.get(b":scheme"), pseudo.get(b":path")
        if scheme is None or path is None or not path:
            raise Malformed("missing :scheme or :path")
        if scheme not in (b"https", b"http"):
            raise Malformed(f"unsupported :scheme {scheme[:20]!r}")
        if _PATH.fullmatch(path) is None or (path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS")):
            raise Malformed("invalid :path")
    authority = pseudo.get(b":authority")
    if authority is not None and host is not None and authority != host:
        raise Malformed(":authority and host differ")
    target = authority if authority is not None else host
    lines = [b"%s %s HTTP/1.1" % (method, path if method != b"CONNECT" else authority)]
    if target is not None:
        lines.append(b"host: " + target)  # none: the parser answers 400, as for HTTP/1.1
    lines.extend(n + b": " + v for n, v in regular)
    if cookies:
        lines.append(b"cookie: " + b"; ".join(cookies))
    body = not end_stream
    if length is not None:
        lines.append(b"content-length: " + length)
    elif body:
        lines.append(b"transfer-encoding: chunked")
    lines.append(b"\r\n")
    return Request(method, b"\r\n".join(lines), length is not None, body)


def check_trailers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A request's trailer fields (RFC 9113 §8.1): no pseudo-fields, same name and value rules."""
    out = []
    for name, value in headers:
        if name[:1] == b":" or _NAME.fullmatch(name) is None:
            raise Malformed(f"invalid trailer field name {name[:40]!r}")
        if _VALUE_BAD.search(value) is not None or name in CONNECTION_SPECIFIC:
            raise Malformed(f"invalid trailer field {name[:40]!r}")
        out.append((name, value))
    return out


# response fields an h2 client must not get (RFC 9113 §8.2.2), besides those `connection` names
RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
                           b"te", b"http2-settings"})


def response_fields(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The HEADERS of a response the exchange machine produced: `:status` first, then
    every field except the connection-specific ones (and those `connection` names)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    out = [(b":status", b"%d" % status)]
    for name, value in headers:
        if name not in RESPONSE_DROP and name not in named:
            out.append((name, value))
    return out
