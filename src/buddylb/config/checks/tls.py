"""TLS files of `ssl-proxy service` (SPEC §2.1, §2.3): the certificate and key must load.

Paths are relative to the config file's folder.  The pair is loaded the way the TLS
listener will load it (`ssl.SSLContext.load_cert_chain`), with a password callback that
refuses, so an encrypted key is reported instead of prompting on the terminal.  Only
regular files are opened (a FIFO or device would block).  It never keeps a context.
"""

from __future__ import annotations

from pathlib import Path

from buddylb.config.checks import Findings
from buddylb.config.model import Context, SslProxy

_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_MAX_PEM = 1 << 20  # a certificate file larger than 1 MiB is not a certificate file


class _EncryptedKey(Exception):
    pass


def _refuse_password() -> bytes:
    raise _EncryptedKey()


def _read_pem(path: Path) -> str | None:
    """The file's text, or None when it is not a readable regular file."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            return fh.read(_MAX_PEM).decode("ascii", errors="replace")
    except (OSError, ValueError):
        return None


def _missing(path: Path) -> str:
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    return "is not a regular file that can be read" if exists else "does not exist"


def _cert_problem(path: Path, what: str) -> str | None:
    text = _read_pem(path)
    if text is None:
        return f"{what} file {path} {_missing(path)}"
    if _PEM_CERT not in text:
        return f"{what} file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    return None


def check_ssl_proxies(ctx: Context, base_dir: Path, f: Findings) -> None:
    for sp in ctx.ssl_proxies.values():
        _check_one(sp, base_dir, f)


def _check_one(sp: SslProxy, base_dir: Path, f: Findings) -> None:
    owner = f'ssl-proxy service "{sp.name}"'
    fix = "fix the path (relative to the config file) or the file"
    if sp.cert is None:
        f.missing(sp.line, sp.line, f'{owner} has no certificate; add "cert FILE" under it')
    if sp.key is None:
        f.missing(sp.line, sp.line, f'{owner} has no key; add "key FILE" under it')
    if sp.chain is not None:
        problem = _cert_problem(base_dir / sp.chain, "chain")
        if problem is not None:
            f.error(sp.chain_line, f"{owner}: {problem}; {fix}")
    cert = base_dir / sp.cert if sp.cert is not None else None
    key = base_dir / sp.key if sp.key is not None else None
    cert_ok = key_ok = False
    if cert is not None:
        problem = _cert_problem(cert, "certificate")
        cert_ok = problem is None
        if problem is not None:
            f.error(sp.cert_line, f"{owner}: {problem}; {fix}")
    if key is not None:
        key_ok = _read_pem(key) is not None
        if not key_ok:
            f.error(sp.key_line, f"{owner}: key file {key} {_missing(key)}; {fix}")
    if cert is not None and key is not None and cert_ok and key_ok:
        _load_pair(owner, sp.key_line, cert, key, f)


def _load_pair(owner: str, line: int, cert: Path, key: Path, f: Findings) -> None:
    """Load the pair the way the TLS listener will; a problem is reported on the key line.
    `ssl` is imported here, not at the top: `check` of a file without TLS never needs it."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_refuse_password)
    except _EncryptedKey:
        f.error(
            line,
            f"{owner}: key file {key} is encrypted; write the key unencrypted (openssl pkey -in ... -out ...)",
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        f.error(
            line,
            f"{owner}: certificate {cert} and key {key} do not load together ({exc}); check that the key is "
            "the PEM private key of that certificate",
        )
