"""Helpers of the config tests: parse + validate in one call, throwaway TLS files."""

from __future__ import annotations

from pathlib import Path

from buddylb.config.model import Config, Diagnostic
from buddylb.config.parser import check_text
from tests.support.certs import make_cert

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


def write_cert_pair(folder: Path, stem: str = "shop", password: bytes | None = None) -> tuple[Path, Path]:
    """A throwaway self-signed certificate and its key, `stem`.crt and `stem`.key in
    `folder` (tests/support/certs.py, the one certificate maker); with `password` the key
    is written encrypted, which buddylb must refuse (it never prompts)."""
    cert_path, key_path = make_cert(folder, stem)
    if password is not None:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(password)))
    return cert_path, key_path
