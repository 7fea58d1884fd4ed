"""Rate-limited log lines with counts (issue 13 item 7), under a fake clock and timer."""
from __future__ import annotations

import errno
import logging

from buddylb.io import lograte
from buddylb.io.lograte import LogRate


class FakeTimers:
    def __init__(self) -> None:
        self.now = 0.0
        self.due: list[tuple[float, object]] = []

    def schedule(self, delay: float, callback) -> None:
        self.due.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while True:
            ready = sorted((t, i) for i, (t, _) in enumerate(self.due) if t <= self.now)
            if not ready:
                return
            _, i = ready[0]
            _, cb = self.due.pop(i)
            cb()


def make(caplog) -> tuple[LogRate, FakeTimers]:
    timers = FakeTimers()
    caplog.set_level(logging.INFO, logger="t")
    return LogRate(logging.getLogger("t"), 10.0, lambda: timers.now, timers.schedule), timers


def test_a_flood_is_one_line_then_one_summary_per_window(caplog) -> None:
    rate, timers = make(caplog)
    for i in range(1532 + 1):
        rate.note("http_408", f"client 10.0.0.{i % 250}: 408 request head not received in time",
                  what="requests got 408")
    assert [r.getMessage() for r in caplog.records] == ["client 10.0.0.0: 408 request head not received in time"]
    timers.advance(10)
    assert caplog.records[-1].getMessage() == (
        "1,532 requests got 408 in the last 10 s (latest: client 10.0.0.32: 408 request head not received in time)")
    assert rate.totals == {"http_408": 1533}
    timers.advance(10)  # a quiet window: nothing logged, and the next event is logged at once
    assert len(caplog.records) == 2
    rate.note("http_408", "client 10.0.0.9: 408 again", what="requests got 408")
    assert caplog.records[-1].getMessage() == "client 10.0.0.9: 408 again" and len(caplog.records) == 3


def test_causes_are_counted_apart(caplog) -> None:
    rate, timers = make(caplog)
    for _ in range(3):
        rate.note("a", "a happened", what="a events")
        rate.note("b", "b happened", logging.WARNING, what="b events")
    timers.advance(10)
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == ["2 a events in the last 10 s (latest: a happened)", "2 b events in the last 10 s "
                        "(latest: b happened)", "a happened", "b happened"]
    assert [r.levelname for r in caplog.records if "b happened" in r.getMessage()] == ["WARNING", "WARNING"]


def test_too_many_open_files_is_its_own_warning(caplog, monkeypatch) -> None:
    rate, timers = make(caplog)
    monkeypatch.setattr(lograte, "RATE", rate)
    for _ in range(500):
        lograte.note_connect_failure("127.0.1.11", 80, OSError(errno.EMFILE, "Too many open files"))
    lograte.note_connect_failure("127.0.1.11", 80, ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    timers.advance(10)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and rate.totals == {"descriptors_exhausted": 500, "connect_failed": 1}
    assert "499 server connects failed: too many open files in the last 10 s" in lines[-1]
