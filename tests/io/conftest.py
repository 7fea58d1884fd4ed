"""A fake transport, a fake server connection and a fake clock for the L7 exchange machine
(httpcore's MockBackend idea): the machine runs without sockets or an event loop."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from buddylb.io.l7.exchange import Exchange
from buddylb.io.runtime import Balancer

TIMEOUTS = ("timeout http-request 2\ntimeout keep-alive 3\ntimeout client 4\ntimeout server 5\n"
            "timeout connect 1\ntimeout tunnel 60\n")
CONFIG = TIMEOUTS + """
rserver host web1
  ip address 127.0.1.11
  inservice
serverfarm host web
  rserver web1 8080
    inservice
policy-map type loadbalance http first-match web-policy
  class class-default
    serverfarm web
class-map match-all http-vip
  2 match virtual-address 127.0.0.100 tcp eq 8000
policy-map multi-match int
  class http-vip
    loadbalance vip inservice
    loadbalance policy web-policy
service-policy input int
"""
VIP = ("127.0.0.100", 8000)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeConn:
    """A pooled server connection as the machine sees it."""

    def __init__(self, reused: bool = True) -> None:
        self.owner: Any = None
        self.reused = reused
        self.written: list[bytes] = []
        self.paused = False
        self.state = "open"
        self.eof_sent = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_eof(self) -> None:
        self.eof_sent = True

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.state = "closed"

    def abort(self) -> None:
        self.state = "aborted"


class FakePort:
    """Records every action of the machine; the test plays the event loop."""

    def __init__(self, balancer: Balancer, clock: Clock) -> None:
        self.balancer = balancer
        self.clock = clock
        self.written: list[bytes] = []
        self.records: list = []
        self.connects: list = []
        self.idle: list[FakeConn] = []  # what `take` hands out
        self.given_back: list[FakeConn] = []
        self.state = "open"
        self.reading = True
        self.eof_sent = False
        self.armed: float | None = None

    def now(self) -> float:
        return self.clock.t

    def decide(self, flow):
        ex = self.ex
        return self.balancer.decide(ex.vip, flow, ex.snap)

    def take(self, address: str, port: int):
        return self.idle.pop() if self.idle else None

    def connect(self, lease) -> None:
        self.connects.append(lease)

    def give_back(self, conn) -> None:
        conn.owner = None
        self.given_back.append(conn)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_eof(self) -> None:
        self.eof_sent = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.state = "closed"

    def abort_transport(self) -> None:
        self.state = "aborted"

    def arm(self, deadline: float) -> None:
        self.armed = deadline if self.armed is None else min(self.armed, deadline)

    def record(self, rec) -> None:
        self.records.append(rec)

    def tunnel(self, relay) -> None:
        """After a 101 the client's events (and the timer) go to the relay, as in protocol.py."""
        self.ex = relay

    # -- the test's side: the loop ------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the clock; fire the timer as the loop would (possibly several times)."""
        self.clock.t += seconds
        while self.armed is not None and self.armed <= self.clock.t and self.state == "open":
            self.armed = None
            self.ex.tick(self.clock.t)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def balancer(tmp_path: Path, clock: Clock) -> Balancer:
    path = tmp_path / "lb.cfg"
    path.write_text(CONFIG)
    return Balancer(path, b"s" * 32, clock=clock)


@pytest.fixture
def machine(balancer: Balancer, clock: Clock) -> tuple[Exchange, FakePort]:
    port = FakePort(balancer, clock)
    ex = Exchange(port, balancer, VIP, tls=False)
    port.ex = ex
    ex.start("127.0.0.9")
    return ex, port
