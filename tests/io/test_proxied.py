"""io.proxied.ProxyGate with a fake transport (no sockets): what a listed and an unlisted
peer's bytes turn into, and `preface` for send-proxy.  The real processes are in
tests/e2e/test_proxy_protocol.py."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from buddylb.io.proxied import ProxyGate, preface
from buddylb.io.runtime import Balancer
from buddylb.proxyproto import build_local, build_v1, build_v2, parse
from tests.io.conftest import CONFIG, VIP

LISTED = "10.1.2.3"


class FakeTransport:
    def __init__(self, peer: str) -> None:
        self.peer = (peer, 40000)
        self.protocol: Any = None
        self.state = "open"

    def get_extra_info(self, name: str) -> Any:
        return self.peer if name == "peername" else None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def abort(self) -> None:
        self.state = "aborted"

    def is_closing(self) -> bool:
        return self.state != "open"


class Relay(asyncio.Protocol):
    """Stands for L4Client / L7Client: records what it is given."""

    def __init__(self, origin: Any) -> None:
        self.origin = origin
        self.events: list = []

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> bool:
        self.events.append("eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


@pytest.fixture
def balancer(tmp_path: Path) -> Balancer:
    path = tmp_path / "lb.cfg"
    path.write_text(CONFIG.replace("    loadbalance policy web-policy\n",
                                   "    loadbalance policy web-policy\n    loadbalance vip accept-proxy 10.0.0.0/8\n"))
    return Balancer(path, b"s" * 32)


def gate(balancer: Balancer, peer: str) -> tuple[ProxyGate, FakeTransport, list[Relay]]:
    made: list[Relay] = []

    def make(origin: Any) -> Relay:
        made.append(Relay(origin))
        return made[-1]

    g = ProxyGate(balancer, balancer.snapshot.vips[VIP], make)
    t = FakeTransport(peer)
    t.protocol = g
    g.connection_made(t)
    return g, t, made


def run(body) -> None:
    async def main() -> None:
        body()
    asyncio.run(main())


def test_a_listed_peer_waits_for_the_whole_header(balancer: Balancer) -> None:
    def body() -> None:
        g, t, made = gate(balancer, LISTED)
        wire = build_v2("192.0.2.7", 1234, "127.0.0.100", 8000) + b"GET / HTTP/1.1\r\n"
        for i in range(0, 20, 4):
            g.data_received(wire[i:i + 4])
            assert made == [] and t.state == "open"  # nothing decided before the header is whole
        g.data_received(wire[20:])
        (relay,) = made
        assert relay.origin == ("192.0.2.7", 1234, "127.0.0.100", 8000)
        assert t.protocol is relay and relay.events == ["made", b"GET / HTTP/1.1\r\n"]
        assert g.slot is None  # the header timer is disarmed
    run(body)


@pytest.mark.parametrize("header", [build_local(1), build_local(2)])
def test_local_and_unknown_mean_the_real_peer(balancer: Balancer, header: bytes) -> None:
    def body() -> None:
        g, t, made = gate(balancer, LISTED)
        g.data_received(header)
        assert [r.origin for r in made] == [None] and made[0].events == ["made"]
    run(body)


@pytest.mark.parametrize("data, reason", [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n", "malformed"),
    (b"GET / HTTP/1.1\r\n", "malformed"),
])
def test_a_listed_peer_with_a_bad_header_is_refused(balancer: Balancer, data: bytes, reason: str) -> None:
    def body() -> None:
        g, t, made = gate(balancer, LISTED)
        g.data_received(data)
        assert made == [] and t.state == "aborted"
        assert balancer.proxy_refused == {("Admin", "127.0.0.100:8000", reason): 1}
    run(body)


def test_late_and_truncated_headers(balancer: Balancer) -> None:
    def body() -> None:
        g, t, made = gate(balancer, LISTED)
        g.data_received(b"PROXY TCP4 1.2")
        assert g.slot is not None  # armed for `timeout http-request` (an L7 VIP)
        g.fire()
        assert t.state == "aborted"
        g2, t2, _ = gate(balancer, LISTED)
        g2.data_received(b"PROXY TCP4 1.2")
        assert g2.eof_received() is False and t2.state == "aborted"
        g3, t3, _ = gate(balancer, LISTED)  # closed before any byte: a connect check, not counted
        assert g3.eof_received() is False and t3.state == "open"
        assert balancer.proxy_refused == {("Admin", "127.0.0.100:8000", "timeout"): 1,
                                          ("Admin", "127.0.0.100:8000", "truncated"): 1}
        for x in (g, g2, g3):
            x.connection_lost(None)
    run(body)


def test_an_unlisted_peer_is_served_at_once_but_may_not_send_a_header(balancer: Balancer) -> None:
    def body() -> None:
        g, t, made = gate(balancer, "192.168.1.1")
        (relay,) = made
        assert relay.origin is None and relay.events == ["made"] and t.protocol is g
        g.data_received(b"\r\n")  # could still be a v2 signature: held
        assert relay.events == ["made"]
        g.data_received(b"GET / HTTP/1.1\r\n")
        assert t.protocol is relay and relay.events == ["made", b"\r\nGET / HTTP/1.1\r\n"]
        g2, t2, made2 = gate(balancer, "192.168.1.2")
        g2.data_received(build_v1("1.1.1.1", 1, "2.2.2.2", 2))
        assert t2.state == "aborted"
        g2.connection_lost(None)
        assert made2[0].events == ["made", "lost"]  # its relay gives its lease back
        g3, t3, made3 = gate(balancer, "192.168.1.3")
        g3.data_received(b"PR")
        assert g3.eof_received() is True  # half-closed before the bytes told: they are data
        assert made3[0].events == ["made", b"PR", "eof"]
        assert balancer.proxy_refused == {("Admin", "127.0.0.100:8000", "untrusted"): 1}
    run(body)


def test_preface_names_the_client_and_the_vip(balancer: Balancer) -> None:
    vip = balancer.snapshot.vips[VIP]
    t = FakeTransport("127.0.0.21")
    h = parse(preface(1, None, t, vip))
    assert h is not None and h.source == ("127.0.0.21", 40000) and h.destination == ("127.0.0.100", 8000)
    h = parse(preface(2, ("2001:db8::9", 7, "2001:db8::1", 443), t, vip))
    assert h is not None and h.version == 2 and h.source == ("2001:db8::9", 7)
    assert h.destination == ("2001:db8::1", 443)  # what accept-proxy was told is passed on
