"""Fixtures for loopback end-to-end tests: free ports, backends, buddylb processes."""
from __future__ import annotations

import pytest

from tests.support.backends import Backends
from tests.support.balancer import BalancerProcess
from tests.support.certs import make_cert
from tests.support.faulty import FaultyBackends
from tests.support.net import free_port

VIP = "127.0.0.100"


class Ports(dict):
    """`ports["http"]` is a free port, the same one every time it is asked for, and never
    one already handed out under another name: nothing is bound between two asks, so
    bind(0) can offer the same port twice (seen: lnx1_http and lnx1_dec both 42737)."""

    def __missing__(self, name: str) -> int:
        host = VIP if name.startswith("vip") else "127.0.1.1"
        port = free_port(host)
        while port in self.values():
            port = free_port(host)
        self[name] = port
        return port


@pytest.fixture
def ports() -> Ports:
    return Ports()


@pytest.fixture
def backends():
    with Backends() as bk:
        yield bk


@pytest.fixture
def faulty():
    """Misbehaving HTTP servers (tests/support/faulty.py), stopped at teardown."""
    with FaultyBackends() as fb:
        yield fb


@pytest.fixture
def balancer(tmp_path):
    """Factory: balancer(config_text, *args) starts buddylb; every one is stopped at teardown."""
    started: list[BalancerProcess] = []

    def start(text: str, *args: str, env: dict | None = None, certs: bool = False) -> BalancerProcess:
        wd = tmp_path / f"lb{len(started)}"
        wd.mkdir()
        if certs:
            make_cert(wd, "shop")  # ssl-proxy service SHOP-TLS: cert shop.crt, key shop.key
        bp = BalancerProcess(text, wd, args=list(args), env=env)
        started.append(bp)
        return bp.start()

    yield start
    for bp in started:
        bp.stop()
