"""Throwaway self-signed certificates made at test time (never committed)."""
from __future__ import annotations

from pathlib import Path

from buddylb.demo.certs import make_cert as _make_cert


def make_cert(folder: Path, stem: str = "shop", cn: str = "buddylb.test") -> tuple[Path, Path]:
    return _make_cert(folder, stem, "127.0.0.100", common_name=cn, more_addresses=("127.0.0.1",),
                      more_names=(cn,))
