"""Admin API access rules (issue 5 item 6): loopback-only by default; any other address
needs a token file; tokens compare in constant time; mutations only by POST."""
from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from buddylb.errors import CommandError


def split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise CommandError(f'admin address "{addr}" must be HOST:PORT (e.g. 127.0.0.1:9180)', 2)
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise CommandError(f"cannot read admin token file {path}: {exc.strerror}", 2) from exc
    if len(token) < 16:
        raise CommandError(f"admin token in {path} is too short; use at least 16 characters", 2)
    return token


def admin_token_for(addr: str, token_file: Path | None) -> str | None:
    """The token `buddylb run` requires, or None on loopback without a token file."""
    host, _ = split_addr(addr)
    if token_file is not None:
        return read_token(token_file)
    if not is_loopback(host):
        raise CommandError(
            f"admin API on non-loopback address {addr} needs --admin-token-file; "
            "bind it to 127.0.0.1 or give a token file", 2)
    return None


def token_ok(expected: str | None, presented: str | None) -> bool:
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
