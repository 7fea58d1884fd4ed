"""Sans-IO parsing of the TLS ClientHello and ServerHello for ssl-session stickiness.

Owns: reading the first handshake message out of the TLS records a peer sent
(RFC 8446 §5.1 record layer, §4.1.2 ClientHello, §4.1.3 ServerHello; RFC 5246 §7.4.1
for TLS 1.2) and reporting what stickiness needs: the session id, the versions, SNI.
It must never decrypt, answer, buffer or alter anything: the L4 relay passes bytes
through untouched and calls these functions on a copy of what it has seen so far.

Theory of operation: both functions take *every byte seen so far* in one direction and
return None while the hello is incomplete (it may span several records and arrive in
several reads), an info object once it is complete, and raise `HelloError` as soon as
the bytes cannot be a TLS hello. Reparsing from the start is cheap: a hello is a few KB.

Stickiness rule (SPEC §5): learn the session id from a ServerHello that negotiated
TLS <= 1.2; match it on a later ClientHello's session id. A TLS 1.3 ServerHello only
echoes the client's random legacy_session_id (RFC 8446 §4.1.3, middlebox compatibility
mode), which is never reused, so TLS 1.3 sessions are balanced without an entry.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientHelloInfo", "HelloError", "ServerHelloInfo", "parse_client_hello",
           "parse_server_hello", "TLS1_2", "TLS1_3"]

TLS1_2 = 0x0303
TLS1_3 = 0x0304
_HANDSHAKE = 22  # ContentType.handshake (RFC 8446 §5.1)
_CLIENT_HELLO, _SERVER_HELLO = 1, 2  # HandshakeType (RFC 8446 §4)
_EXT_SERVER_NAME, _EXT_SESSION_TICKET, _EXT_SUPPORTED_VERSIONS = 0, 35, 43
_MAX_RECORD = 2**14  # TLSPlaintext.length (RFC 8446 §5.1)
_MAX_HELLO = 2**16  # far above any real hello (post-quantum key shares included)
# ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest")
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


class HelloError(ValueError):
    """The bytes are not a well-formed TLS hello (garbage, another protocol, truncation
    inside a complete record)."""


@dataclass(frozen=True, slots=True)
class ClientHelloInfo:
    legacy_version: int  # ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3)
    session_id: bytes  # empty when the client offers no session to resume
    supports_tls13: bool  # supported_versions lists 0x0304
    server_name: str | None  # SNI host_name (RFC 6066 §3), as sent
    session_ticket: bool  # a non-empty session_ticket extension (RFC 5077 resumption)


@dataclass(frozen=True, slots=True)
class ServerHelloInfo:
    legacy_version: int
    session_id: bytes
    version: int  # negotiated: supported_versions when present, else legacy_version
    hello_retry_request: bool

    @property
    def tls13(self) -> bool:
        return self.version == TLS1_3


class _Reader:
    """Bounds-checked big-endian reads over one handshake message body."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.end - self.pos < n:
            raise HelloError("truncated hello")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        n = self.uint(length_bytes)
        sub = _Reader(self.data, self.pos, self.pos + n)
        self.take(n)
        return sub

    @property
    def left(self) -> int:
        return self.end - self.pos


def _handshake_message(data: bytes, expected: int) -> bytes | None:
    """The body of the first handshake message, reassembled from records (RFC 8446 §5.1:
    a handshake message may be fragmented across records), or None if incomplete."""
    pos, message, need = 0, bytearray(), -1
    while True:
        header = data[pos:pos + 5]
        if header[:1] and header[0] != _HANDSHAKE:
            raise HelloError(f"not a TLS handshake record (content type {header[0]})")
        if header[1:2] and header[1] != 3 or header[2:3] and header[2] > 4:
            raise HelloError("unknown TLS record version")
        if len(header) < 5:
            return None
        length = int.from_bytes(header[3:5], "big")
        if not 0 < length <= _MAX_RECORD:
            raise HelloError("bad TLS record length")
        fragment = data[pos + 5:pos + 5 + length]
        message += fragment
        if len(message) >= 4 and need < 0:
            if message[0] != expected:
                raise HelloError(f"expected handshake type {expected}, got {message[0]}")
            need = 4 + int.from_bytes(message[1:4], "big")
            if need > _MAX_HELLO:
                raise HelloError("hello too large")
        if need >= 0 and len(message) >= need:
            return bytes(message[4:need])
        if len(fragment) < length:
            return None
        pos += 5 + length


def _extensions(body: _Reader) -> dict[int, bytes]:
    """Extensions of a hello (absent in old TLS 1.2 hellos); each type at most once."""
    found: dict[int, bytes] = {}
    if body.left:
        block = body.vector(2)
        while block.left:
            kind = block.uint(2)
            if kind in found:
                raise HelloError(f"duplicate extension {kind}")
            found[kind] = block.take(block.uint(2))
    if body.left:
        raise HelloError("trailing bytes after the extensions")
    return found


def _server_name(ext: bytes | None) -> str | None:
    if not ext:
        return None
    names = _Reader(ext).vector(2)
    while names.left:
        kind, name = names.uint(1), names.vector(2)
        if kind == 0:  # host_name
            try:
                return name.take(name.left).decode("ascii")
            except UnicodeDecodeError as exc:
                raise HelloError("SNI host_name is not ASCII") from exc
    return None


def _session_id(body: _Reader) -> bytes:
    session_id = body.vector(1)
    if session_id.left > 32:
        raise HelloError("session id longer than 32 bytes")
    return session_id.take(session_id.left)


def parse_client_hello(data: bytes) -> ClientHelloInfo | None:
    """What the client offers, from all bytes it sent so far; None = need more bytes."""
    raw = _handshake_message(data, _CLIENT_HELLO)
    if raw is None:
        return None
    body = _Reader(raw)
    legacy_version = body.uint(2)
    body.take(32)  # random
    session_id = _session_id(body)
    suites = body.vector(2)
    if suites.left < 2 or suites.left % 2:
        raise HelloError("bad cipher_suites")
    if body.vector(1).left < 1:
        raise HelloError("no compression methods")
    ext = _extensions(body)
    tls13 = False
    if _EXT_SUPPORTED_VERSIONS in ext:
        versions = _Reader(ext[_EXT_SUPPORTED_VERSIONS]).vector(1)
        while versions.left:
            if versions.uint(2) == TLS1_3:
                tls13 = True
    return ClientHelloInfo(legacy_version, session_id, tls13, _server_name(ext.get(_EXT_SERVER_NAME)),
                           bool(ext.get(_EXT_SESSION_TICKET)))


def parse_server_hello(data: bytes) -> ServerHelloInfo | None:
    """What the server chose, from all bytes it sent so far; None = need more bytes."""
    raw = _handshake_message(data, _SERVER_HELLO)
    if raw is None:
        return None
    body = _Reader(raw)
    legacy_version = body.uint(2)
    random = body.take(32)
    session_id = _session_id(body)
    body.take(3)  # cipher_suite, legacy_compression_method
    ext = _extensions(body)
    version = legacy_version
    if _EXT_SUPPORTED_VERSIONS in ext:
        selected = _Reader(ext[_EXT_SUPPORTED_VERSIONS])
        version = selected.uint(2)
        if selected.left:
            raise HelloError("bad supported_versions in ServerHello")
    return ServerHelloInfo(legacy_version, session_id, version, random == _HRR_RANDOM)
