"""Fixtures more than one test directory uses."""
from __future__ import annotations

import pytest

from tests.support.redis import RedisServer


@pytest.fixture
def redis_server():
    """A real redis-server on a free loopback port for one test, stopped and removed after
    (tests/store/test_stores.py keeps one per module, for speed, under the same name)."""
    srv = RedisServer().start()
    try:
        yield srv
    finally:
        srv.cleanup()
