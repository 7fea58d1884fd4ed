"""Fixtures of the admin tests: a running shop per test, or one shared by a module."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.admin.support import Shop, running_shop


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    with running_shop(tmp_path) as s:
        yield s
