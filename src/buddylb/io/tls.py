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


def server_context(service: TlsService, source: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    try:
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

    return (service.cert, service.key, service.chain, stamp(service.cert), stamp(service.key), stamp(service.chain))
