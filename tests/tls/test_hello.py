"""ClientHello / ServerHello parsing on real handshakes captured from the ssl module
(MemoryBIO + SSLObject, no sockets), whole and split across feeds."""
from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from buddylb.tls.hello import (
    TLS1_2, TLS1_3, HelloError, parse_client_hello, parse_server_hello,
)


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    d: Path = tmp_path_factory.mktemp("tls")
    (d / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return d / "c.pem", d / "k.pem"


@pytest.fixture(scope="module")
def server_ctx(cert_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_files)
    ctx.options |= ssl.OP_NO_TICKET  # session-id resumption, as ssl-session stickiness needs
    return ctx


def _client_ctx(max_version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = max_version
    return ctx


_ALIVE: list[ssl.SSLObject] = []


def _handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext,
               session: ssl.SSLSession | None = None) -> tuple[bytes, bytes, ssl.SSLObject]:
    """Run a full handshake in memory; return (client's first flight, server's first
    flight, the client SSLObject). The server SSLObject is kept alive: OpenSSL drops a
    session from the server cache when its connection is freed without a shutdown."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="shop.test", session=session)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    flights: dict[str, bytes] = {}
    done = {"c": False, "s": False}
    for _ in range(10):
        for side, obj, out, peer_in in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
            data = out.read()
            if data:
                flights.setdefault(side, data)
                peer_in.write(data)
        if all(done.values()):
            break
    client.write(b"x")  # TLS 1.3 delivers the session after the first exchange
    s_in.write(c_out.read())
    server.read(1)
    c_in.write(s_out.read())
    try:
        client.read(1)
    except ssl.SSLWantReadError:
        pass
    _ALIVE.append(server)
    return flights["c"], flights["s"], client


def _splits(data: bytes) -> list[list[bytes]]:
    return [[data[i:i + 1] for i in range(len(data))],
            [data[:3], data[3:7], data[7:100], data[100:]],
            [data[:5], data[5:]]]


def _parse_incrementally(parse, pieces: list[bytes]):  # type: ignore[no-untyped-def]
    seen, result = b"", None
    for piece in pieces:
        seen += piece
        result = parse(seen)
        if result is not None:
            break
    return result


def test_tls12_session_id_is_learned_and_resumed(server_ctx: ssl.SSLContext) -> None:
    ctx = _client_ctx(ssl.TLSVersion.TLSv1_2)
    ch1, sh1, client = _handshake(ctx, server_ctx)
    first_client, first_server = parse_client_hello(ch1), parse_server_hello(sh1)
    assert first_client is not None and first_server is not None
    assert first_client.legacy_version == TLS1_2 and not first_client.supports_tls13
    assert first_client.server_name == "shop.test"
    assert first_server.version == TLS1_2 and not first_server.tls13
    assert len(first_server.session_id) == 32

    ch2, sh2, resumed = _handshake(ctx, server_ctx, session=client.session)
    assert resumed.session_reused
    again, echoed = parse_client_hello(ch2), parse_server_hello(sh2)
    assert again is not None and echoed is not None
    assert again.session_id == first_server.session_id == echoed.session_id


def test_ticket_issuing_server_gives_nothing_to_learn(cert_files: tuple[Path, Path]) -> None:
    """RFC 5077: a server that issues a ticket sends an empty session id; resumption
    then echoes the client's fresh random id. Documented limit of ssl-session sticky."""
    ticket_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ticket_ctx.load_cert_chain(*cert_files)
    ctx = _client_ctx(ssl.TLSVersion.TLSv1_2)
    _, sh1, client = _handshake(ctx, ticket_ctx)
    first = parse_server_hello(sh1)
    assert first is not None and first.session_id == b""
    ch2, sh2, resumed = _handshake(ctx, ticket_ctx, session=client.session)
    hello, echoed = parse_client_hello(ch2), parse_server_hello(sh2)
    assert resumed.session_reused and hello is not None and echoed is not None
    assert hello.session_ticket and hello.session_id == echoed.session_id != b""


def test_tls13_has_no_stable_session_id(server_ctx: ssl.SSLContext) -> None:
    ctx = _client_ctx(ssl.TLSVersion.TLSv1_3)
    ch, sh, _ = _handshake(ctx, server_ctx)
    hello, chosen = parse_client_hello(ch), parse_server_hello(sh)
    assert hello is not None and chosen is not None
    assert hello.supports_tls13 and hello.legacy_version == TLS1_2
    assert chosen.tls13 and chosen.version == TLS1_3 and not chosen.hello_retry_request
    assert chosen.session_id == hello.session_id  # only an echo (middlebox compatibility)


def test_hellos_split_across_feeds(server_ctx: ssl.SSLContext) -> None:
    ch, sh, _ = _handshake(_client_ctx(ssl.TLSVersion.TLSv1_2), server_ctx)
    whole_c, whole_s = parse_client_hello(ch), parse_server_hello(sh)
    for pieces in _splits(ch):
        assert _parse_incrementally(parse_client_hello, pieces) == whole_c
    for pieces in _splits(sh):
        assert _parse_incrementally(parse_server_hello, pieces) == whole_s
    for n in range(len(ch) - 1):  # one byte short of a complete hello is "need more"
        if parse_client_hello(ch[:n]) is not None:
            assert n >= 5 + 4 + int.from_bytes(ch[6:9], "big")


def _refragment(flight: bytes, size: int) -> bytes:
    """The first record's payload re-cut into records of `size` bytes."""
    length = int.from_bytes(flight[3:5], "big")
    payload, header = flight[5:5 + length], flight[:3]
    return b"".join(header + len(payload[i:i + size]).to_bytes(2, "big") + payload[i:i + size]
                    for i in range(0, len(payload), size))


def test_hello_fragmented_across_records(server_ctx: ssl.SSLContext) -> None:
    ch, sh, _ = _handshake(_client_ctx(ssl.TLSVersion.TLSv1_2), server_ctx)
    for size in (1, 3, 50):
        assert parse_client_hello(_refragment(ch, size)) == parse_client_hello(ch)
        assert parse_server_hello(_refragment(sh, size)) == parse_server_hello(sh)


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\n",  # HTTP on a TLS port
    b"\x16\x09\x01\x00\x05",  # record version 9.1
    b"\x16\x03\x01\x00\x00",  # empty handshake record
    b"\x16\x03\x01\x40\x01",  # record longer than 2**14
    b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello where a ClientHello belongs
    b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03",  # body truncated inside the message
    b"\x80\x2e\x01\x03\x01",  # SSLv2-compatible hello
])
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(HelloError):
        parse_client_hello(garbage)


def test_too_short_needs_more() -> None:
    assert parse_client_hello(b"") is None
    assert parse_client_hello(b"\x16\x03") is None
    assert parse_client_hello(b"\x16\x03\x01\x02\x00\x01\x00") is None
    assert parse_server_hello(b"\x16\x03\x03\x00\x10\x02\x00\x00") is None
