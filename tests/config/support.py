"""Helpers of the config tests: parse + validate in one call, throwaway TLS files."""

from __future__ import annotations

import datetime
from pathlib import Path

from buddylb.config.model import Config, Diagnostic
from buddylb.config.parser import check_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def diagnose(text: str, base_dir: Path | None = None, file: str = "t.cfg") -> tuple[Config, list[Diagnostic]]:
    """Parse and validate `text`; every diagnostic, errors and warnings, in line order."""
    return check_text(text, file, base_dir or Path("/nonexistent-config-dir"))


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def warnings(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "warning"]


def assert_one_error(text: str, line: int, expected: str) -> None:
    """SPEC §2.3 for one invalid file: exactly one error, on `line` of t.cfg, whose
    message names what is wrong (`expected`) and says how to fix it (after a ';')."""
    _, diagnostics = diagnose(text)
    found = errors(diagnostics)
    assert len(found) == 1, "\n".join(str(d) for d in diagnostics)
    (error,) = found
    assert (error.file, error.line) == ("t.cfg", line), str(error)
    assert expected in error.message, str(error)
    assert ";" in error.message  # ... that says how to fix it


def write_cert_pair(
    folder: Path, cert_name: str = "shop.crt", key_name: str = "shop.key", password: bytes | None = None
) -> tuple[Path, Path]:
    """A throwaway self-signed EC certificate and its key, PEM, into `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    cert_path, key_path = folder / cert_name, folder / key_name
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return cert_path, key_path
