"""Sticky keys: what identifies "the same client" in a scope (SPEC §3).

- ip-netmask: the source and/or destination address masked with the scope's *effective*
  (most granular) mask or v6 prefix, as one int. IPv6 keys carry a tag bit so they never
  equal an IPv4 key; `both` packs source and destination side by side.
- http-cookie / http-header: the value (learned cookie, header) or the verified client
  id inside buddylb's own signed cookie (`core.cookie`).
- ssl-session: the TLS session id bytes.

The client address is the real peer unless the peer is a `trusted-proxy`; then it is the
right-most untrusted `X-Forwarded-For` address (SPEC §3).  Addresses are parsed with
`socket.inet_pton` (C) and cached, since the same clients come back all the time.
"""
from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any, Hashable, NamedTuple, Sequence

from buddylb.core import cookie as sticky_cookie
from buddylb.core.snapshot import Scope, Snapshot

V6_TAG = 1 << 130
_ALL4 = 0xFFFFFFFF
_ALL6 = (1 << 128) - 1


_aton = socket.inet_aton
_from_bytes = int.from_bytes
try:  # built by Cython (setup.py COMPILED), `_v4` below runs as a C loop over the characters
    import cython
    _COMPILED = bool(cython.compiled)
except ImportError:  # no Cython at all: plain Python, and inet_aton is the faster parser there
    _COMPILED = False


def _v4(address: str) -> int:
    """A dotted-quad IPv4 address as an int, exactly as `inet_aton` reads it.

    Compiled, a plain decimal quad is read in C (two parses per decision at 1M clients
    were a tenth of its instructions, issue 11); anything else (octal or hex parts, short
    forms, junk) goes to `inet_aton`, so both builds accept and reject the same strings."""
    if _COMPILED:
        value = 0
        part = 0
        digits = 0
        dots = 0
        lead0 = False
        for ch in address:
            if "0" <= ch <= "9":
                if digits == 1 and lead0:
                    break  # a leading zero: octal for inet_aton
                lead0 = digits == 0 and ch == "0"
                part = part * 10 + (ord(ch) - 48)
                digits += 1
                if part > 255:
                    break
            elif ch == "." and digits and dots < 3:
                value = (value << 8) | part
                part = digits = 0
                dots += 1
            else:
                break
        else:
            if dots == 3 and digits:
                return (value << 8) | part
    return _from_bytes(_aton(address), "big")


def v4_value(address: str) -> int:
    """A plain dotted-quad IPv4 address as an int, else -1: the caller then takes the
    general path (`ip_key`), which reads or refuses every other form exactly as before.

    The decision path's key without a Python int per part (issue 11)."""
    if not _COMPILED:
        return -1 if ":" in address else _v4(address)
    value = 0
    part = 0
    digits = 0
    dots = 0
    for ch in address:
        if "0" <= ch <= "9":
            if digits and part == 0:
                return -1  # a leading zero: octal for inet_aton
            part = part * 10 + (ord(ch) - 48)
            digits += 1
            if part > 255:
                return -1
        elif ch == "." and digits and dots < 3:
            value = (value << 8) | part
            part = digits = 0
            dots += 1
        else:
            return -1
    if dots == 3 and digits:
        return (value << 8) | part
    return -1


def addr_int(address: str) -> tuple[int, bool]:
    """(integer value, is_v6). IPv4-mapped IPv6 addresses count as IPv4.

    Addresses come from the kernel (peer names) or were validated (X-Forwarded-For), so
    the C parser is used directly; no cache: with a million distinct clients a cache
    only misses."""
    if ":" in address:
        return _addr6(address)
    return _v4(address), False


@lru_cache(maxsize=4096)
def _addr6(address: str) -> tuple[int, bool]:
    raw = int.from_bytes(socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0]), "big")
    if raw >> 32 == 0xFFFF:
        return raw & _ALL4, False
    return raw, True


def _masked(address: str, prefix4: int, prefix6: int) -> int:
    if ":" not in address:
        value = _v4(address)
        return value if prefix4 == 32 else value & (_ALL4 ^ (_ALL4 >> prefix4))
    value, v6 = _addr6(address)
    if v6:
        return (value & (_ALL6 ^ (_ALL6 >> prefix6))) | V6_TAG
    return value & (_ALL4 ^ (_ALL4 >> prefix4))


BOTH_V4_TAG = 1 << 64  # `both` with two IPv4 addresses: (src << 32 | dst) | tag, a 65-bit int


def ip_key(scope: Scope, source: str, destination: str) -> int:
    rule = scope.address
    if rule == "source":
        return _masked(source, scope.prefix4, scope.prefix6)
    if rule == "destination":
        return _masked(destination, scope.prefix4, scope.prefix6)
    s = _masked(source, scope.prefix4, scope.prefix6)
    d = _masked(destination, scope.prefix4, scope.prefix6)
    if s <= _ALL4 and d <= _ALL4:
        return BOTH_V4_TAG | (s << 32) | d  # compact: fewer int digits per entry
    return (s << 131) | d


def split_both(key: int) -> tuple[int, int]:
    """(source part, destination part) of an `address both` key."""
    if key >> 64 == 1:
        return (key >> 32) & _ALL4, key & _ALL4
    return key >> 131, key & ((1 << 131) - 1)


def _format_one(value: int, scope: Scope) -> str:
    if value & V6_TAG:
        addr = str(ipaddress.IPv6Address(value & _ALL6))
        return addr if scope.prefix6 == 128 else f"{addr}/{scope.prefix6}"
    addr = str(ipaddress.IPv4Address(value))
    return addr if scope.prefix4 == 32 else f"{addr}/{scope.prefix4}"


def format_key(scope: Scope, key: Hashable) -> str:
    """The key in address notation for show commands (SPEC §4 JSON conventions)."""
    if scope.kind == "ip-netmask" and isinstance(key, int):
        if scope.address == "both":
            src, dst = split_both(key)
            return f"{_format_one(src, scope)}->{_format_one(dst, scope)}"
        return _format_one(key, scope)
    if isinstance(key, bytes):
        return key.hex()
    return str(key)


def parse_key(scope: Scope, text: str) -> Hashable:
    """The inverse of format_key, for `clear sticky database key K`."""
    if scope.kind == "ip-netmask":
        if ("->" in text) != (scope.address == "both"):
            raise ValueError(f"{text!r} is not a key of a {scope.address} scope")
        if "->" in text:
            s, d = text.split("->", 1)
            return ip_key(scope, s.split("/")[0], d.split("/")[0])
        return _masked(text.split("/")[0], scope.prefix4, scope.prefix6)
    if scope.kind == "ssl-session":
        return bytes.fromhex(text)
    return text


def effective_client(peer: str, xff: Sequence[str] | None, trusted: tuple) -> str:
    """The client address for keys (SPEC §3): the peer, unless it is a trusted proxy."""
    if not trusted or not xff or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in xff for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed hop: do not trust the chain
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class KeyInfo(NamedTuple):
    key: Hashable  # None: this flow has no key in the scope (balanced without an entry)
    set_cookie: str | None = None  # a token to send back (cookie insert)
    learn_cookie: str | None = None  # cookie name to learn from the response
    learn_session: bool = False  # learn the TLS session id from the ServerHello
    minted: bool = False  # the key is a client id made just now: no entry can exist


def sticky_key(snap: Snapshot, scope: Scope, flow: Any, secret: bytes) -> KeyInfo:
    """The key that identifies this flow's client in `scope` (SPEC §3); `flow` is a
    `core.decide.Flow`.  Here with the key rules it applies; `core.decide` calls it."""
    kind = scope.kind
    if kind == "ip-netmask":
        source = effective_client(flow.source, flow.xff, snap.trusted_proxies) if flow.xff else flow.source
        return KeyInfo(ip_key(scope, source, flow.destination))
    if kind == "http-header":
        return KeyInfo((flow.headers or {}).get(scope.header_name or ""))
    if kind == "ssl-session":
        return KeyInfo(flow.ssl_session or None, learn_session=True)
    # http-cookie
    value = (flow.cookies or {}).get(scope.cookie_name or "")
    if not scope.cookie_insert:
        return KeyInfo(value, learn_cookie=scope.cookie_name if value is None else None)
    verified = sticky_cookie.verify(secret, scope.name, value, flow.wall, scope.timeout_s) if value else None
    if verified is None:
        token, cid = sticky_cookie.issue(secret, scope.name, flow.wall)
        return KeyInfo(cid, set_cookie=token, minted=True)
    cid, age = verified
    refresh = None
    if age > scope.timeout_s / 2:  # keep an active client's token from ageing out
        refresh, _ = sticky_cookie.issue(secret, scope.name, flow.wall, bytes.fromhex(cid))
    return KeyInfo(cid, set_cookie=refresh)
