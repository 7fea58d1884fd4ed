"""The PROXY protocol, versions 1 and 2, sans-IO: parse a header from bytes, build one.

Implements HAProxy's doc/proxy-protocol.txt (https://www.haproxy.org/download/2.6/doc/
proxy-protocol.txt); section numbers below are that document's.  Owns the wire format
only: it never touches a socket, an event loop or a clock, and never decides whom to
trust (the VIP's `accept-proxy` CIDRs, io/proxygate.py) or what to send (the farm's
`send-proxy`, io/l4.py and io/l7/).

Receiving (`parse`): called with every byte received so far on a connection, it answers
`None` (a valid beginning: wait for more), a `ProxyHeader` (whose `length` bytes are the
header; what follows is the client's data), or raises `BadProxyHeader`.  Headers are at
most 107 bytes (v1) or `V2_MAX` bytes (v2), so re-parsing the buffer on each read is
bounded.  The rules, each one tested in tests/test_proxyproto.py:
- §2.1 v1: "PROXY" SP ("TCP4"|"TCP6") SP src SP dst SP sport SP dport CRLF, exactly one
  space between fields, CRLF within the first 107 bytes (else invalid), a lone CR or LF
  is invalid; IPv4 as four decimals without leading zeros, IPv6 as its family dictates
  (no zone); ports 0-65535 without leading zeros.  "UNKNOWN" may carry anything up to
  the CRLF: the receiver uses the real connection's addresses (`local`).
- §2.2 v2: the 12-byte signature, version nibble 2 (anything else invalid), command
  LOCAL (0, use the real endpoints, skip the whole block) or PROXY (1; other values
  invalid); family 0-3 and transport 0-2 (other values invalid); TCP/UDP over IPv4 (12
  address bytes) and IPv6 (36) give the addresses, a length shorter than the family
  needs is invalid; AF_UNSPEC, AF_UNIX (216) and UNSPEC transport fall back to the real
  endpoints (§2.2: "automatically falls back to the UNSPEC mode"), their block skipped
  like LOCAL's.  After IPv4/IPv6 addresses the bytes are TLVs: each must fit, they are skipped except PP2_TYPE_CRC32C (verified
  when present, §2.2.3) and PP2_TYPE_UNIQUE_ID (at most 128 bytes, §2.2.5).
- Anything that is neither a v1 nor a v2 beginning is invalid as soon as one byte
  disagrees (§2.2 "otherwise ... the connection must be dropped").

Sending (`build_v1`, `build_v2`): the client's and the destination's address and port;
when the two families differ the IPv4 one is written IPv4-mapped (::ffff:a.b.c.d), as
HAProxy does.  Addresses travel as canonical text (inet_ntop's, as socket peer names
are), converted with inet_pton/inet_ntop, never through ipaddress objects: this runs
once per server connection of a send-proxy farm and per accepted header.  `build_local` is the header of a connection on our own behalf (probes):
v2 LOCAL, or v1 "UNKNOWN".
"""
from __future__ import annotations

import re
import struct
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from dataclasses import dataclass

from buddylb.errors import LbError

V1_PREFIX = b"PROXY "
V1_MAX = 107  # §2.1: the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX = 16384  # a whole v2 header, TLVs included: HAProxy's default buffer (tune.bufsize); longer is refused
_V2_FIXED = struct.Struct("!12sBBH")
_INET = struct.Struct("!4s4sHH")
_INET6 = struct.Struct("!16s16sHH")
_ADDRESS_LEN = {1: 12, 2: 36, 3: 216}  # family -> address block length (§2.2)
_TLV_CRC32C = 0x03
_TLV_UNIQUE_ID = 0x05
_UNIQUE_ID_MAX = 128
_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")
_IPV4 = re.compile(rb"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_IPV6 = re.compile(rb"[0-9A-Fa-f:.]{2,45}")
_PRINTABLE = re.compile(rb"[^\x20-\x7e]")


class BadProxyHeader(LbError):
    """Bytes that are not a valid PROXY protocol header; `reason` says which rule broke."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete header.  `local`: use the real connection's addresses (v2 LOCAL, v1
    UNKNOWN, a family we do not take addresses from); else `source` and `destination`
    are (address, port) with the address in canonical text form."""

    version: int
    length: int  # bytes of the header; the client's data starts after them
    local: bool
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def parse(data: bytes | bytearray) -> ProxyHeader | None:
    """The header at the start of `data`, or None if `data` is a valid but incomplete
    beginning; raises BadProxyHeader otherwise (see the module header for the rules)."""
    n = len(data)
    if n == 0:
        return None
    if data[0] == 0x50:  # "P": only a v1 header can start so
        head = bytes(data[:6])
        if not V1_PREFIX.startswith(head):
            raise BadProxyHeader("neither a v1 (\"PROXY \") nor a v2 signature")
        return _parse_v1(data) if n > 6 else None
    head = bytes(data[:12])
    if not V2_SIGNATURE.startswith(head):
        raise BadProxyHeader("neither a v1 (\"PROXY \") nor a v2 signature")
    return _parse_v2(data) if n >= 16 else None


def sniff(data: bytes | bytearray) -> bool | None:
    """Does `data` start like a PROXY header?  None: too few bytes to tell.  (A peer
    outside `accept-proxy` that sends one is refused: it is trying to name a client.)"""
    if not data:
        return None
    head = bytes(data[:12])
    if V2_SIGNATURE.startswith(head):
        return True if len(head) == 12 else None
    head = head[:5]
    if b"PROXY".startswith(head):
        return True if len(head) == 5 else None
    return False


# -- version 1 (§2.1) ------------------------------------------------------------------
def _parse_v1(data: bytes | bytearray) -> ProxyHeader | None:
    window = bytes(data[:V1_MAX])
    end = window.find(b"\r\n")
    # a CR that ends what arrived may be the CRLF's first half
    body = (window[:-1] if window.endswith(b"\r") else window) if end < 0 else window[:end]
    bad = _PRINTABLE.search(body)
    if bad is not None:
        if body[bad.start()] in (0x0D, 0x0A):
            raise BadProxyHeader("v1 line ends with a lone CR or LF, not CRLF")
        raise BadProxyHeader("v1 line holds a byte that is not printable US-ASCII")
    if end < 0:
        if len(window) >= V1_MAX:
            raise BadProxyHeader(f"v1 line has no CRLF within its first {V1_MAX} bytes")
        return None
    line = body[6:]
    length = end + 2
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        return ProxyHeader(1, length, True)  # the rest of the line is ignored (§2.1)
    fields = line.split(b" ")
    proto = fields[0]
    if proto != b"TCP4" and proto != b"TCP6":
        raise BadProxyHeader("v1 protocol is not TCP4, TCP6 or UNKNOWN")
    if len(fields) != 5:
        raise BadProxyHeader("v1 line needs exactly: protocol, two addresses, two ports, one space apart")
    _, src, dst, sport, dport = fields
    if proto == b"TCP4":
        source, dest = _v4_text(src), _v4_text(dst)
    else:
        source, dest = _v6_text(src), _v6_text(dst)
    return ProxyHeader(1, length, False, (source, _port_text(sport)), (dest, _port_text(dport)))


def _v4_text(raw: bytes) -> str:
    """The pattern leaves one spelling per address (no leading zeros): it is the canonical text."""
    if _IPV4.fullmatch(raw) is None or max(map(int, raw.split(b"."))) > 255:
        raise BadProxyHeader("v1 TCP4 address is not four decimals 0-255 without leading zeros")
    return raw.decode("ascii")


def _v6_text(raw: bytes) -> str:
    """inet_pton's rules (as HAProxy's receiver: no zone, 128 bits, an IPv4 tail allowed),
    returned in inet_ntop's canonical text, the form the kernel gives peer addresses in."""
    if _IPV6.fullmatch(raw) is None:
        raise BadProxyHeader("v1 TCP6 address is not an IPv6 address")
    try:
        return inet_ntop(AF_INET6, inet_pton(AF_INET6, raw.decode("ascii")))
    except OSError:
        raise BadProxyHeader("v1 TCP6 address is not an IPv6 address") from None


def _port_text(raw: bytes) -> int:
    if _PORT.fullmatch(raw) is None or int(raw) > 65535:
        raise BadProxyHeader("v1 port is not a decimal 0-65535 without leading zeros")
    return int(raw)


# -- version 2 (§2.2) ------------------------------------------------------------------
def _parse_v2(data: bytes | bytearray) -> ProxyHeader | None:
    _, ver_cmd, fam, size = _V2_FIXED.unpack_from(data)
    if ver_cmd >> 4 != 2:
        raise BadProxyHeader(f"v2 version nibble is {ver_cmd >> 4}, not 2")
    command = ver_cmd & 0x0F
    if command > 1:
        raise BadProxyHeader(f"v2 command {command} is neither LOCAL (0) nor PROXY (1)")
    family, transport = fam >> 4, fam & 0x0F
    if family > 3 or transport > 2:
        raise BadProxyHeader(f"v2 family/transport byte 0x{fam:02x} is not a defined family and transport")
    total = 16 + size
    if total > V2_MAX:
        raise BadProxyHeader(f"v2 header of {total} bytes is longer than {V2_MAX}")
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the real endpoints; the block, family included, is skipped
        return ProxyHeader(2, total, True)
    need = _ADDRESS_LEN.get(family, 0) if transport else 0
    if size < need:
        raise BadProxyHeader(f"v2 address length {size} is shorter than the {need} bytes its family needs")
    if not need or family == 3:  # AF_UNSPEC, UNSPEC transport, AF_UNIX: fall back to the real endpoints
        return ProxyHeader(2, total, True)
    block = bytes(data[:total])
    _check_tlvs(block, 16 + need)
    af, layout = (AF_INET, _INET) if family == 1 else (AF_INET6, _INET6)
    src, dst, sport, dport = layout.unpack_from(block, 16)
    return ProxyHeader(2, total, False, (inet_ntop(af, src), sport), (inet_ntop(af, dst), dport))


def _check_tlvs(block: bytes, at: int) -> None:
    """Walk the TLVs after the addresses: each must fit; CRC32C is verified, UNIQUE_ID bounded."""
    end = len(block)
    while at < end:
        if at + 3 > end:
            raise BadProxyHeader("v2 TLV header is cut short by the header length")
        kind, size = block[at], int.from_bytes(block[at + 1:at + 3], "big")
        value = at + 3
        if value + size > end:
            raise BadProxyHeader(f"v2 TLV 0x{kind:02x} of {size} bytes runs past the header")
        if kind == _TLV_CRC32C:
            if size != 4:
                raise BadProxyHeader("v2 CRC32C TLV is not 4 bytes")
            zeroed = block[:value] + b"\0\0\0\0" + block[value + 4:]
            if crc32c(zeroed) != int.from_bytes(block[value:value + 4], "big"):
                raise BadProxyHeader("v2 CRC32C checksum does not match the header")
        elif kind == _TLV_UNIQUE_ID and size > _UNIQUE_ID_MAX:
            raise BadProxyHeader(f"v2 UNIQUE_ID TLV of {size} bytes is longer than {_UNIQUE_ID_MAX}")
        at = value + size


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli, RFC 4960 appendix B), as PP2_TYPE_CRC32C uses; only for
    headers that carry one, so a table loop over a few hundred bytes is enough."""
    c = 0xFFFFFFFF
    table = _CRC
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# -- building ------------------------------------------------------------------------------
def _pair(source: str, destination: str) -> tuple[int, str, str]:
    """(4 or 6, source, destination) in one family: an IPv4 address next to an IPv6 one
    is written IPv4-mapped.  The addresses are peer names or parsed headers: already
    canonical, so no ipaddress objects per connection (a zone suffix is dropped)."""
    s6, d6 = ":" in source, ":" in destination
    if s6 and "%" in source:
        source = source.partition("%")[0]
    if d6 and "%" in destination:
        destination = destination.partition("%")[0]
    if s6 == d6:
        return (6 if s6 else 4), source, destination
    return 6, (source if s6 else "::ffff:" + source), (destination if d6 else "::ffff:" + destination)


def build_v1(source: str, source_port: int, destination: str, destination_port: int) -> bytes:
    family, s, d = _pair(source, destination)
    return f"PROXY TCP{family} {s} {d} {source_port} {destination_port}\r\n".encode("ascii")


def build_v2(source: str, source_port: int, destination: str, destination_port: int,
             tlvs: tuple[tuple[int, bytes], ...] = (), crc: bool = False) -> bytes:
    """A v2 PROXY (TCP) header; `tlvs` (type, value) are appended, and with `crc` a
    CRC32C TLV over the whole header (§2.2.3)."""
    family, s, d = _pair(source, destination)
    af, fam, layout = (AF_INET, 0x11, _INET) if family == 4 else (AF_INET6, 0x21, _INET6)
    addresses = layout.pack(inet_pton(af, s), inet_pton(af, d), source_port, destination_port)
    extra = b"".join(bytes([t]) + len(v).to_bytes(2, "big") + v for t, v in tlvs)
    if crc:
        extra += bytes([_TLV_CRC32C]) + b"\x00\x04\0\0\0\0"
    head = _V2_FIXED.pack(V2_SIGNATURE, 0x21, fam, len(addresses) + len(extra)) + addresses + extra
    if crc:
        head = head[:-4] + crc32c(head).to_bytes(4, "big")
    return head


def build_local(version: int) -> bytes:
    """The header of a connection made on our own behalf (a probe): v2 LOCAL, v1 UNKNOWN."""
    if version == 2:
        return _V2_FIXED.pack(V2_SIGNATURE, 0x20, 0x00, 0)
    return b"PROXY UNKNOWN\r\n"


def build(version: int, source: str, source_port: int, destination: str, destination_port: int) -> bytes:
    """The header `send-proxy v1|v2` opens a server connection with."""
    if version == 2:
        return build_v2(source, source_port, destination, destination_port)
    return build_v1(source, source_port, destination, destination_port)
