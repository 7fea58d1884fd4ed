"""sd_notify client (service/notify.py): datagrams to a real socket, watchdog on the loop."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from buddylb.service.notify import Notifier, monotonic_usec, socket_address, watchdog_interval
from tests.support.notify import NotifySocket


def test_socket_address_forms():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@sd-notify/1") == b"\0sd-notify/1"
    assert socket_address("vsock:2:1234") is None
    assert socket_address("") is None


def test_watchdog_interval_is_half_and_only_for_this_pid():
    pid = os.getpid()
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}, pid) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(pid)}, pid) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(pid + 1)}, pid) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid) is None
    assert watchdog_interval({}, pid) is None


def test_no_socket_means_no_op():
    n = Notifier({})
    assert not n.enabled and n.ready() is False and n.sent == 0


@pytest.mark.parametrize("abstract", [True, False])
def test_states_reach_the_socket(tmp_path, abstract):
    rx = NotifySocket(None if abstract else str(tmp_path / "notify"))
    n = Notifier({"NOTIFY_SOCKET": rx.env_value})
    try:
        before = monotonic_usec()
        assert n.ready("2 VIP(s) in service") and n.reloading() and n.stopping("draining")
        rx.poll(1.0)
        got = [m.fields for m in rx.messages]
        assert got[0] == {"READY": "1", "STATUS": "2 VIP(s) in service"}
        assert got[1]["RELOADING"] == "1" and before <= int(got[1]["MONOTONIC_USEC"]) <= monotonic_usec()
        assert got[2] == {"STOPPING": "1", "STATUS": "draining"}
        assert all(m.pid == os.getpid() for m in rx.messages)
    finally:
        n.close()
        rx.close()


def test_a_vanished_socket_is_reported_not_raised(tmp_path, caplog):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False and n.watchdog() is False
    assert sum("cannot notify" in r.message for r in caplog.records) == 1  # logged once
    n.close()


def test_watchdog_pings_stop_while_the_loop_is_blocked():
    """The pings come from the event loop: a loop stuck in a blocking call sends none,
    which is what lets systemd's WatchdogSec restart a wedged process."""
    rx = NotifySocket()
    n = Notifier({"NOTIFY_SOCKET": rx.env_value, "WATCHDOG_USEC": "100000"})  # ping every 50 ms

    async def scenario() -> tuple[int, int, int]:
        task = asyncio.get_running_loop().create_task(n.watchdog_loop())
        await asyncio.sleep(0.4)
        rx.poll(0.05)
        turning = len(rx.messages)
        time.sleep(0.5)  # the loop is wedged: nothing may be sent meanwhile
        rx.poll(0.0)
        wedged = len(rx.messages) - turning
        await asyncio.sleep(0.3)
        rx.poll(0.05)
        resumed = len(rx.messages) - turning - wedged
        task.cancel()
        return turning, wedged, resumed

    try:
        turning, wedged, resumed = asyncio.run(scenario())
        assert turning >= 4 and wedged == 0 and resumed >= 2, (turning, wedged, resumed)
        assert all(m.fields == {"WATCHDOG": "1"} for m in rx.messages)
    finally:
        n.close()
        rx.close()
