"""The default TLS cipher list of terminated VIPs (issue 13 item 8): Mozilla
"intermediate", so no CBC suite (testssl flagged LUCKY13 on two of them)."""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from buddylb.core.snapshot import TlsService
from buddylb.io.tls import INTERMEDIATE_CIPHERS, server_context
from tests.support.certs import make_cert

CBC_ONLY = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:" \
           "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:" \
           "ECDHE-ECDSA-AES256-SHA384:AES128-SHA:AES256-SHA:AES128-SHA256:AES256-SHA256"


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[str | None, str | None]:
    """(cipher the client got, or None; the server's error, or None) over a socketpair."""
    a, b = socket.socketpair()
    result: dict[str, str | None] = {"server": None}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError) as exc:
            result["server"] = type(exc).__name__ + ": " + str(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname="buddylb.test") as c:
            cipher = c.cipher()[0]
            c.sendall(b"x")
            return cipher, None
    except ssl.SSLError as exc:
        return None, str(exc)
    finally:
        b.close()
        t.join(5)
        a.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ssl.SSLContext:
    cert, key = make_cert(Path(tmp_path_factory.mktemp("tls")))
    return server_context(TlsService("SHOP-TLS", str(cert), str(key), None), "t.cfg")


def client(max_version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def test_cbc_only_client_fails_the_handshake(server) -> None:
    cipher, error = handshake(server, client(ssl.TLSVersion.TLSv1_2, CBC_ONLY))
    assert cipher is None and error is not None


def test_tls12_default_client_gets_an_aead_suite(server) -> None:
    cipher, error = handshake(server, client(ssl.TLSVersion.TLSv1_2))
    assert error is None and cipher is not None
    assert "GCM" in cipher or "CHACHA20" in cipher


def test_offered_tls12_suites_are_intermediate_and_all_aead(server) -> None:
    offered = [c for c in server.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert offered and all(c["aead"] for c in offered), [c["name"] for c in offered if not c["aead"]]
    assert {c["name"] for c in offered} <= set(INTERMEDIATE_CIPHERS.split(":"))
