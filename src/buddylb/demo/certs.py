"""A throwaway self-signed certificate for the demo's HTTPS VIP (`cryptography`).

Owns only the making of one EC P-256 key and certificate, valid two days, for
127.0.0.100 / localhost, written beside the demo config.  Never trusted by anything:
the demo's own client and the suggested `curl -k` skip verification on purpose.
"""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(folder: Path, stem: str, address: str, common_name: str = "buddylb demo",
              more_addresses: tuple[str, ...] = (), more_names: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Write `stem.crt` and `stem.key` (0600) in `folder`; returns their paths.

    The tests use it too (tests/support/certs.py) for their throwaway certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in ("localhost", *more_names)]
            + [x509.IPAddress(ipaddress.ip_address(a)) for a in (address, *more_addresses)]
        ), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, pem = folder / f"{stem}.crt", folder / f"{stem}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.touch(mode=0o600)
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem
