"""TLS termination contexts for `ssl-proxy service` VIPs (SPEC §2.1).

One SSLContext per service, built from the snapshot's resolved paths; the handshake
itself is the transport's (uvloop/OpenSSL), bounded by `timeout tls-handshake` at the
listener (asyncio's own default of 60 s would let a silent client hold a socket a
minute).  Errors become LbError naming the service and its config line.
"""
from __future__ import annotations

import ssl

from buddylb.core.snapshot import TlsService
from buddylb.errors import LbError


# Mozilla "intermediate" (v5.7) TLS 1.2 suites: ECDHE/DHE with AES-GCM or ChaCha20-Poly1305
# only. OpenSSL's default list also enabled CBC suites, which testssl flags (LUCKY13:
# issue 13 item 8). TLS 1.3 suites are all AEAD and keep OpenSSL's defaults. The DHE
# suites stay inert: no DH parameters are loaded.
INTERMEDIATE_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))


# ALPN of a TLS-terminated L7 VIP: HTTP/2 first (io/h2), HTTP/1.1 for the rest (RFC 7301)
L7_ALPN = ["h2", "http/1.1"]


def server_context(service: TlsService, source: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    """`alpn`: the protocols offered (an L7 VIP: h2 and http/1.1, io/h2/protocol.py)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if service.min_version is not None:  # an ACE parameter-map's `version` (never below 1.2)
        ctx.minimum_version = max(ctx.minimum_version, getattr(ssl.TLSVersion, service.min_version))
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    try:
        if service.ciphers:  # an ACE parameter-map's `cipher` lines (TLS <= 1.2 suites)
            ctx.set_ciphers(":".join(service.ciphers))
        ctx.load_cert_chain(service.cert, service.key)
        if service.chain:
            ctx.load_verify_locations(service.chain)
    except (OSError, ssl.SSLError) as exc:
        raise LbError(
            f"{source}:{service.line}: ssl-proxy service {service.name}: cannot load certificate "
            f"{service.cert} / key {service.key}: {exc}; fix the paths or regenerate the pair"
        ) from exc
    return ctx


def identity(service: TlsService | None) -> tuple | None:
    """What decides whether a listener's TLS context must be rebuilt on reload."""
    if service is None:
        return None
    import os

    def stamp(p: str | None) -> float:
        try:
            return os.stat(p).st_mtime if p else 0.0
        except OSError:
            return -1.0

    return (service.cert, service.key, service.chain, stamp(service.cert), stamp(service.key), stamp(service.chain),
            service.ciphers, service.min_version)
