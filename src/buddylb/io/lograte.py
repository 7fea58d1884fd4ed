"""Log lines per cause, rate-limited, with counts (issue 13 item 7).

A flood must not write one line per event: 15,000 clients timing out wrote 15,000 INFO
lines, and every connect during descriptor exhaustion logged "Too many open files".
`LogRate.note(cause, message)` counts the event; the first one of a quiet cause is
logged at once, the rest are summed and logged once per window as "1,532 requests got
408 in the last 10 s (request head not received in time)". The totals per cause are
the metric `buddylb_log_events_total{cause}`.

It owns no clock and no timer of its own: `clock` and `schedule(delay, callback)` are
given (the event loop's by default), so a test drives it with a fake clock. It never
raises and never blocks: a note is a dict update, and at most one timer per cause is
pending.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Callable

WINDOW_S = 10.0

Schedule = Callable[[float, Callable[[], None]], object]


def _loop_schedule(delay: float, callback: Callable[[], None]) -> object:
    return asyncio.get_running_loop().call_later(delay, callback)


class LogRate:
    def __init__(self, logger: logging.Logger, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, schedule: Schedule = _loop_schedule) -> None:
        self.logger = logger
        self.window_s = window_s
        self.clock = clock
        self.schedule = schedule
        self.totals: dict[str, int] = {}  # cause -> events since start (the metric)
        self._pending: dict[str, int] = {}  # cause -> events not logged yet
        self._detail: dict[str, tuple[int, str]] = {}  # cause -> (level, the latest message)
        self._armed: set[str] = set()  # causes with a flush timer pending

    def note(self, cause: str, message: str, level: int = logging.INFO, what: str = "events") -> None:
        """One event of `cause`; `what` names the events in the summary ("requests got 408")."""
        self.totals[cause] = self.totals.get(cause, 0) + 1
        self._detail[cause] = (level, what + "\x00" + message)
        if cause in self._armed:
            self._pending[cause] = self._pending.get(cause, 0) + 1
            return
        # quiet until now: log this one as it is, and sum the ones of the next window
        self.logger.log(level, "%s", message)
        self._armed.add(cause)
        try:
            self.schedule(self.window_s, lambda: self._flush(cause))
        except RuntimeError:  # no running loop (a tool, a test): nothing to sum later
            self._armed.discard(cause)

    def _flush(self, cause: str) -> None:
        n = self._pending.pop(cause, 0)
        if n == 0:
            self._armed.discard(cause)  # quiet: the next event is logged at once
            return
        level, text = self._detail[cause]
        what, _, message = text.partition("\x00")
        self.logger.log(level, "%s %s in the last %g s (latest: %s)", f"{n:,}", what, self.window_s, message)
        self.schedule(self.window_s, lambda: self._flush(cause))


# The process-wide instance the data path notes into (one per process, like the logger).
RATE = LogRate(logging.getLogger("buddylb"))


def note_connect_failure(address: str, port: int, exc: BaseException | None) -> None:
    """A failed connect to a server. Running out of descriptors is its own cause, at
    WARNING ("Too many open files" once per window, with the count, not once per client)."""
    errno_ = getattr(exc, "errno", None)
    if errno_ in (errno.EMFILE, errno.ENFILE):
        RATE.note("descriptors_exhausted", f"connect to {address}:{port} failed: {exc}; raise the descriptor "
                  "limit or lower maxconn", logging.WARNING, "server connects failed: too many open files")
    else:
        RATE.note("connect_failed", f"connect to {address}:{port} failed: {exc or 'timeout'}", logging.INFO,
                  "server connects failed")
