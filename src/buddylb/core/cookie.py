"""buddylb's own sticky cookie (`sticky http-cookie NAME` with `cookie insert`).

The cookie value is an opaque token: a random client id, the time it was issued and an
HMAC over both plus the scope name, keyed with the per-install secret (SPEC §5). There
is no address, port or server name inside, so a client learns nothing about the farm
and cannot steer itself: a token that does not verify (tampered, forged, from another
install or scope) or that is older than the scope's timeout is ignored, and the client
is balanced as new and gets a fresh cookie.  The client id keys the sticky database,
which is what remembers the rserver (and the buddy in every farm of the scope).

No I/O and no clock: the caller passes the wall-clock seconds.
"""
from __future__ import annotations

import base64
import hmac
import os
import struct
from hashlib import sha256

_ID_LEN = 12
_MAC_LEN = 12
_TOKEN_LEN = _ID_LEN + 4 + _MAC_LEN  # 28 bytes -> 38 base64url characters


def new_secret() -> bytes:
    return os.urandom(32)


def _mac(secret: bytes, scope: str, body: bytes) -> bytes:
    return hmac.new(secret, scope.encode() + b"\x00" + body, sha256).digest()[:_MAC_LEN]


def issue(secret: bytes, scope: str, wall_now: float, client_id: bytes | None = None) -> tuple[str, str]:
    """A fresh (token, client_id_hex) pair."""
    cid = client_id if client_id is not None else os.urandom(_ID_LEN)
    body = cid + struct.pack(">I", int(wall_now) & 0xFFFFFFFF)
    token = base64.urlsafe_b64encode(body + _mac(secret, scope, body)).rstrip(b"=").decode()
    return token, cid.hex()


def verify(secret: bytes, scope: str, token: str, wall_now: float, max_age_s: float) -> tuple[str, float] | None:
    """(client id hex, age in seconds) of a valid token, else None. Never raises on client input."""
    if not token or len(token) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != _TOKEN_LEN:
        return None
    body, mac = raw[: _ID_LEN + 4], raw[_ID_LEN + 4 :]
    if not hmac.compare_digest(mac, _mac(secret, scope, body)):
        return None
    (issued,) = struct.unpack(">I", body[_ID_LEN:])
    age = int(wall_now) - issued
    if age < -60 or age > max_age_s:
        return None
    return body[:_ID_LEN].hex(), float(max(age, 0))
