"""Fixtures of the config tests: a folder with a throwaway certificate and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.support import write_cert_pair


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    """tmp_path holding shop.crt / shop.key (the names the SPEC §2 example uses)."""
    write_cert_pair(tmp_path)
    return tmp_path
