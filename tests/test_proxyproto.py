"""The PROXY protocol codec (buddylb.proxyproto): every rule of HAProxy's
doc/proxy-protocol.txt that the module header lists, one case each, then Hypothesis:
built headers parse back across any split of the reads, and no input makes the parser
fail other than with BadProxyHeader or wait beyond the length bounds."""
from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buddylb.proxyproto import (
    V1_MAX, V2_MAX, V2_SIGNATURE, BadProxyHeader, ProxyHeader, build, build_local, build_v1, build_v2, crc32c,
    parse, sniff,
)


def v2(ver_cmd: int, fam: int, body: bytes, size: int | None = None) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam, len(body) if size is None else size) + body


INET = ipaddress.IPv4Address("10.1.2.3").packed + ipaddress.IPv4Address("10.9.9.9").packed + struct.pack("!HH", 4321, 80)
INET6 = ipaddress.IPv6Address("2001:db8::1").packed + ipaddress.IPv6Address("2001:db8::2").packed + \
    struct.pack("!HH", 5555, 443)


# -- version 1 -------------------------------------------------------------------------------
def test_v1_tcp4() -> None:
    data = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"
    h = parse(data)
    assert h == ProxyHeader(1, 47, False, ("192.168.0.1", 56324), ("192.168.0.11", 443))
    assert data[h.length:] == b"GET / HTTP/1.1\r\n"


def test_v1_tcp6_canonical_text() -> None:
    h = parse(b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::2 0 65535\r\n")
    assert h is not None and h.source == ("2001:db8::1", 0) and h.destination == ("::2", 65535)


def test_v1_longest_lines_are_accepted() -> None:
    six = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    tcp6 = f"PROXY TCP6 {six} {six} 65535 65535\r\n".encode()
    assert len(tcp6) == 104 and parse(tcp6) is not None
    worst = f"PROXY UNKNOWN {six} {six} 65535 65535\r\n".encode()
    assert len(worst) == V1_MAX == 107
    assert parse(worst) == ProxyHeader(1, 107, True)


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN 1.2.3.4 anything at all\r\n"])
def test_v1_unknown_uses_the_real_addresses(line: bytes) -> None:
    assert parse(line + b"rest") == ProxyHeader(1, len(line), True)


@pytest.mark.parametrize("line, why", [
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "leading zeros"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", "leading zeros"),
    (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "leading zeros"),
    (b"PROXY TCP4 ::1 ::2 1 2\r\n", "four decimals"),
    (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "not an IPv6"),
    (b"PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n", "not an IPv6"),
    (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::2 1 2\r\n", "not an IPv6"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "port"),
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "exactly"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "exactly"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "exactly"),
    (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
    (b"PROXY UNKNOWNX\r\n", "TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "lone CR or LF"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n", "lone CR or LF"),
    (b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "printable"),
    (b"PROXY UNKNOWN \xff\r\n", "printable"),
    (b"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "neither"),
    (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "neither"),
    (b"GET / HTTP/1.1\r\n", "neither"),
])
def test_v1_malformed(line: bytes, why: str) -> None:
    with pytest.raises(BadProxyHeader, match=why):
        parse(line)


def test_v1_without_crlf_in_107_bytes_is_invalid_and_106_waits() -> None:
    line = b"PROXY UNKNOWN " + b"x" * 200
    assert parse(line[:106]) is None
    with pytest.raises(BadProxyHeader, match="107"):
        parse(line[:107])
    assert parse(line[:105] + b"\r") is None  # the CR may be the CRLF's first half


def test_v1_partial_waits_byte_by_byte() -> None:
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
    for i in range(len(line)):
        assert parse(line[:i]) is None, i
    assert parse(line) is not None


# -- version 2 -------------------------------------------------------------------------------
def test_v2_tcp4_and_tcp6() -> None:
    h = parse(v2(0x21, 0x11, INET) + b"data")
    assert h == ProxyHeader(2, 28, False, ("10.1.2.3", 4321), ("10.9.9.9", 80))
    h = parse(v2(0x21, 0x21, INET6))
    assert h == ProxyHeader(2, 52, False, ("2001:db8::1", 5555), ("2001:db8::2", 443))


def test_v2_udp_families_give_addresses_too() -> None:
    assert parse(v2(0x21, 0x12, INET)).source == ("10.1.2.3", 4321)  # type: ignore[union-attr]
    assert parse(v2(0x21, 0x22, INET6)).source == ("2001:db8::1", 5555)  # type: ignore[union-attr]


@pytest.mark.parametrize("fam, body", [
    (0x11, INET), (0x00, b""), (0x00, b"junk that is skipped"), (0x21, b"short"), (0x51, b""),
])
def test_v2_local_skips_the_block_whatever_the_family(fam: int, body: bytes) -> None:
    """§2.2: LOCAL -> the real endpoints; the block, family included, is skipped (even a
    family or length that PROXY would refuse), and the length is never assumed zero."""
    if fam == 0x51:
        with pytest.raises(BadProxyHeader, match="family"):
            parse(v2(0x20, fam, body))  # the family nibble itself is still checked
        return
    assert parse(v2(0x20, fam, body) + b"x") == ProxyHeader(2, 16 + len(body), True)


@pytest.mark.parametrize("fam, body", [
    (0x00, b""), (0x00, INET), (0x10, INET), (0x20, INET6), (0x31, b"u" * 216), (0x32, b"u" * 230),
])
def test_v2_unspec_and_unix_fall_back_to_the_real_endpoints(fam: int, body: bytes) -> None:
    assert parse(v2(0x21, fam, body)) == ProxyHeader(2, 16 + len(body), True)


@pytest.mark.parametrize("head, why", [
    (v2(0x11, 0x11, INET), "version nibble is 1"),
    (v2(0x31, 0x11, INET), "version nibble is 3"),
    (v2(0x22, 0x11, INET), "command 2"),
    (v2(0x2F, 0x11, INET), "command 15"),
    (v2(0x21, 0x41, INET), "family/transport"),
    (v2(0x21, 0x13, INET), "family/transport"),
    (v2(0x21, 0x11, INET[:11]), "shorter than the 12"),
    (v2(0x21, 0x21, INET6[:35]), "shorter than the 36"),
    (v2(0x21, 0x21, INET), "shorter than the 36"),
    (v2(0x21, 0x31, b"u" * 215), "shorter than the 216"),
    (v2(0x21, 0x11, INET + b"\x04\x00"), "cut short"),
    (v2(0x21, 0x11, INET + b"\x04\x00\x05abcd"), "runs past"),
    (v2(0x21, 0x11, INET + b"\x05\x00\x81" + b"u" * 129), "UNIQUE_ID"),
    (v2(0x21, 0x11, INET + b"\x03\x00\x02ab"), "not 4 bytes"),
    (v2(0x21, 0x11, INET + b"\x03\x00\x04abcd"), "checksum does not match"),
    (V2_SIGNATURE[:5] + b"X", "neither"),
    (b"\r\n\r\nGET", "neither"),
])
def test_v2_malformed(head: bytes, why: str) -> None:
    with pytest.raises(BadProxyHeader, match=why):
        parse(head)


def test_v2_tlvs_are_skipped_and_crc32c_verified() -> None:
    tlvs = ((0x01, b"h2"), (0x02, b"example.com"), (0x04, b""), (0x05, b"u" * 128), (0xE0, b"\0" * 40))
    for crc in (False, True):
        head = build_v2("10.1.2.3", 1, "10.9.9.9", 2, tlvs=tlvs, crc=crc)
        h = parse(head + b"GET")
        assert h is not None and h.length == len(head) and h.source == ("10.1.2.3", 1)
    good = build_v2("10.1.2.3", 1, "10.9.9.9", 2, crc=True)
    flipped = good[:20] + bytes([good[20] ^ 1]) + good[21:]  # an address bit: the CRC no longer matches
    with pytest.raises(BadProxyHeader, match="checksum"):
        parse(flipped)


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4 / the CRC catalogue's check value


def test_v2_length_bound() -> None:
    assert parse(v2(0x21, 0x11, b"", size=V2_MAX - 16)) is None  # at the bound: wait for it
    with pytest.raises(BadProxyHeader, match="longer than"):
        parse(v2(0x21, 0x11, b"", size=V2_MAX - 15))


def test_v2_partial_waits_until_the_whole_block() -> None:
    head = build_v2("2001:db8::1", 1, "2001:db8::2", 2, tlvs=((0x02, b"x" * 50),))
    for i in range(len(head)):
        assert parse(head[:i]) is None, i


# -- building, sniffing ------------------------------------------------------------------------
def test_build_mixed_families_are_ipv4_mapped() -> None:
    assert build_v1("127.0.0.5", 40000, "::1", 80) == b"PROXY TCP6 ::ffff:127.0.0.5 ::1 40000 80\r\n"
    assert parse(build_v1("127.0.0.5", 40000, "::1", 80)).source == ("::ffff:127.0.0.5", 40000)  # type: ignore[union-attr]
    h = parse(build_v2("::1", 1, "127.0.0.1", 2))
    assert h is not None and h.source == ("::1", 1) and h.destination == ("::ffff:127.0.0.1", 2)
    assert build_v1("fe80::1%eth0", 1, "fe80::2", 2) == b"PROXY TCP6 fe80::1 fe80::2 1 2\r\n"  # no zone on the wire


def test_build_local_and_build() -> None:
    assert parse(build_local(1)) == ProxyHeader(1, 15, True)
    assert parse(build_local(2)) == ProxyHeader(2, 16, True)
    assert build(1, "1.2.3.4", 5, "6.7.8.9", 10) == b"PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n"
    assert build(2, "1.2.3.4", 5, "6.7.8.9", 10) == build_v2("1.2.3.4", 5, "6.7.8.9", 10)


@pytest.mark.parametrize("data, verdict", [
    (b"", None), (b"PRO", None), (b"PROXY", True), (b"PROXY TCP4", True), (b"\r\n\r\n", None),
    (V2_SIGNATURE, True), (b"GET /", False), (b"\r\nGET", False), (b"\x16\x03\x01", False),
])
def test_sniff(data: bytes, verdict: bool | None) -> None:
    assert sniff(data) is verdict


# -- Hypothesis ------------------------------------------------------------------------------
def canonical(address: str) -> str:
    """The text a socket's peer name has (inet_ntop's), which parse returns."""
    af = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_ntop(af, socket.inet_pton(af, address))


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: canonical(str(a)))  # the callers hand build canonical text (peer names)
ports = st.integers(0, 65535)
tlv = st.tuples(st.sampled_from([0x01, 0x02, 0x04, 0x20, 0x30, 0xE0, 0xF0]), st.binary(max_size=60))


@st.composite
def headers(draw: st.DrawFn) -> tuple[bytes, tuple[str, int], tuple[str, int]]:
    fam = draw(st.sampled_from([ipv4, ipv6]))
    src, dst = draw(fam), draw(fam)
    sport, dport = draw(ports), draw(ports)
    if draw(st.booleans()):
        return build_v1(src, sport, dst, dport), (src, sport), (dst, dport)
    head = build_v2(src, sport, dst, dport, tlvs=tuple(draw(st.lists(tlv, max_size=4))), crc=draw(st.booleans()))
    return head, (src, sport), (dst, dport)


def _feed(chunks: list[bytes]) -> tuple[ProxyHeader | None, bytes]:
    """What a receiver does: accumulate reads, parse after each."""
    buf = bytearray()
    for i, chunk in enumerate(chunks):
        buf += chunk
        h = parse(buf)
        if h is not None:  # the relay gets the rest of this read, then every later read
            return h, bytes(buf[h.length:]) + b"".join(chunks[i + 1:])
    return None, bytes(buf)


@settings(max_examples=300, deadline=None)
@given(headers(), st.binary(max_size=40), st.data())
def test_built_headers_parse_back_across_any_split(made, payload: bytes, data: st.DataObject) -> None:
    head, src, dst = made
    wire = head + payload
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=6, unique=True)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    h, rest = _feed(chunks)
    assert h is not None and h.length == len(head) and not h.local
    assert h.source == (canonical(src[0]), src[1])
    assert h.destination == (canonical(dst[0]), dst[1])
    assert rest == payload  # the client's data after the header is untouched


@settings(max_examples=400, deadline=None)
@given(headers(), st.data())
def test_mutated_headers_fail_cleanly_or_parse(made, data: st.DataObject) -> None:
    """One byte changed, inserted or dropped: the parser raises BadProxyHeader, waits
    (only while within the length bounds), or reads a header; nothing else."""
    head = made[0]
    i = data.draw(st.integers(0, len(head) - 1))
    kind = data.draw(st.sampled_from(["flip", "insert", "drop"]))
    byte = bytes([data.draw(st.integers(0, 255))])
    bad = {"flip": head[:i] + byte + head[i + 1:], "insert": head[:i] + byte + head[i:],
           "drop": head[:i] + head[i + 1:]}[kind]
    try:
        h = parse(bad)
    except BadProxyHeader:
        return
    if h is None:
        assert len(bad) < (V1_MAX if bad.startswith(b"P") else V2_MAX)
    else:
        assert 0 < h.length <= len(bad)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=120).map(lambda b: b"PROXY " + b),
                 st.binary(max_size=120).map(lambda b: V2_SIGNATURE + b)))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        h = parse(data)
    except BadProxyHeader:
        return
    if h is not None:
        assert h.length <= len(data) and (h.local or h.source is not None)
