"""The --workers master's relay (service/relay.py), on a fake clock: what systemd hears."""
from __future__ import annotations

import os
import socket

from buddylb.service.notify import Notifier
from buddylb.service.relay import WorkerRelay
from tests.support.notify import NotifySocket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _relay(watchdog_usec: str | None = "1000000"):
    rx = NotifySocket()
    env = {"NOTIFY_SOCKET": rx.env_value} | ({"WATCHDOG_USEC": watchdog_usec} if watchdog_usec else {})
    clock = Clock()
    relay = WorkerRelay(Notifier(env), clock)
    return rx, relay, clock


def _heard(rx: NotifySocket) -> list[dict[str, str]]:
    rx.poll(0.05)
    return [m.fields for m in rx.messages]


def test_ready_once_every_worker_is_ready_and_after_every_reload():
    rx, relay, _ = _relay(None)
    try:
        relay.add(11)
        relay.add(12)
        relay.handle(11, {"READY": "1"})
        assert _heard(rx) == []
        relay.handle(12, {"READY": "1", "STATUS": "1 VIP(s) in service"})
        assert _heard(rx)[-1] == {"READY": "1", "STATUS": "2 worker(s) in service"}
        relay.reload_begins()
        assert _heard(rx)[-1]["RELOADING"] == "1" and "MONOTONIC_USEC" in rx.messages[-1].fields
        relay.handle(11, {"RELOADING": "1"})
        relay.handle(11, {"READY": "1"})
        assert len(_heard(rx)) == 2  # worker 12 has not reloaded yet
        relay.remove(12)  # it died instead: nobody is left to wait for... after one more READY
        relay.handle(11, {"READY": "1"})
        assert _heard(rx)[-1] == {"READY": "1", "STATUS": "1 worker(s) reloaded"}
        assert relay.child_env() == {"NOTIFY_SOCKET": relay.name}  # no watchdog asked
    finally:
        relay.close()
        rx.close()


def test_watchdog_only_while_every_worker_pings():
    rx, relay, clock = _relay("1000000")  # 1 s: the master pings every 0.5 s
    try:
        assert relay.child_env()["WATCHDOG_USEC"] == "1000000"
        relay.add(11)
        relay.add(12)
        relay.tick()
        assert _heard(rx) == []  # not before READY
        relay.handle(11, {"READY": "1"})
        relay.handle(12, {"READY": "1"})
        for _ in range(4):  # both ping every 0.5 s
            clock.now += 0.5
            relay.handle(11, {"WATCHDOG": "1"})
            relay.handle(12, {"WATCHDOG": "1"})
            relay.tick()
        assert sum("WATCHDOG" in f for f in _heard(rx)) == 4
        for _ in range(6):  # worker 12 is wedged for 3 s
            clock.now += 0.5
            relay.handle(11, {"WATCHDOG": "1"})
            relay.tick()
        assert sum("WATCHDOG" in f for f in _heard(rx)) == 6  # two more: its last ping 0.5 s, 1 s old
        relay.remove(12)  # it exited: the rest vouch for the service again
        clock.now += 0.5
        relay.handle(11, {"WATCHDOG": "1"})
        relay.tick()
        assert sum("WATCHDOG" in f for f in _heard(rx)) == 7
    finally:
        relay.close()
        rx.close()


def test_pump_takes_datagrams_from_worker_pids_only():
    rx, relay, _ = _relay(None)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        address = b"\0" + relay.name[1:].encode()
        sender.sendto(b"READY=1", address)  # from a pid that is not a worker: ignored
        relay.add(os.getpid() + 1_000_000)
        relay.pump(0.1)
        assert _heard(rx) == [] and not relay.started
        relay.add(os.getpid())
        sender.sendto(b"READY=1", address)
        relay.pump(0.1)
        assert relay.ready == {os.getpid()} and not relay.started  # the other worker is not ready
    finally:
        sender.close()
        relay.close()
        rx.close()
