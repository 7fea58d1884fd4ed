"""One loop timer for the deadlines of every client connection, L4 and L7 (a timer wheel).

Each connection has one deadline (l4.py, l7/exchange.py); arming it with
`loop.call_at` cost a libuv timer per accepted connection, about a quarter of the
accept path in a profile.
Here deadlines are rounded up to `STEP` and kept in buckets; one loop callback per
STEP, only while some connection is armed, fires the buckets that are due.  A deadline
fires at most STEP late and never early; arming later than the bucket a connection is
already in costs nothing (the early fire finds the deadline moved and re-arms: the
exchange's lazy deadline).  It must never call into a connection that disarmed itself.
"""
from __future__ import annotations

import asyncio
from typing import Any

RATE = 20  # buckets per second (integers: float floor division would misplace keys)
STEP = 1 / RATE
_TICKING: Any = object()  # `handle` while buckets fire


def shared_wheel(owner: Any, loop: asyncio.AbstractEventLoop) -> "Wheel":
    """The wheel of `loop`, kept on `owner` (the Balancer: one per process and loop)."""
    wheel = owner.wheel
    if wheel is None or wheel.loop is not loop:
        wheel = owner.wheel = Wheel(loop)
    return wheel


def running_wheel(owner: Any) -> "Wheel":
    """The wheel of the running loop, found without asking asyncio which loop runs
    (`get_running_loop` makes a getpid system call, one per accepted connection): the
    wheel already kept on `owner` serves while its loop runs (one loop per process)."""
    wheel = owner.wheel
    if wheel is not None and wheel.loop.is_running():
        return wheel
    return shared_wheel(owner, asyncio.get_running_loop())


class Wheel:
    __slots__ = ("loop", "slots", "handle", "cursor")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots: dict[int, set] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.cursor = 0  # the next bucket to fire

    def arm(self, conn: Any, deadline: float) -> None:
        """Make sure `conn.fire()` runs at or soon after `deadline` (conn.slot: its bucket)."""
        rate = RATE
        key = -int(-deadline * rate // 1)  # rounded up: never early
        old = conn.slot
        if old is not None:
            if old <= key:
                return
            bucket = self.slots.get(old)
            if bucket is not None:
                bucket.discard(conn)
        if self.handle is None:
            self.cursor = int(self.loop.time() * RATE) + 1
            self.handle = self.loop.call_at(self.cursor / RATE, self._tick)
        if key < self.cursor:
            key = self.cursor
        conn.slot = key
        bucket = self.slots.get(key)
        if bucket is None:
            self.slots[key] = {conn}
        else:
            bucket.add(conn)

    def disarm(self, conn: Any) -> None:
        key = conn.slot
        if key is not None:
            conn.slot = None
            bucket = self.slots.get(key)
            if bucket is not None:
                bucket.discard(conn)
                if not bucket:
                    del self.slots[key]

    def _tick(self) -> None:
        # the cursor moves first and `handle` stays set while buckets fire: a connection
        # that re-arms from inside `fire()` lands in a bucket still to come, and never
        # restarts the wheel (which would re-place the cursor behind a bucket)
        now_key = max(int(self.loop.time() * RATE), self.cursor)  # it was scheduled for `cursor`
        first, self.cursor = self.cursor, now_key + 1
        self.handle = _TICKING
        slots = self.slots
        for key in range(first, now_key + 1):
            bucket = slots.pop(key, None)
            if bucket:
                for conn in bucket:
                    conn.slot = None
                    conn.fire()
        self.handle = self.loop.call_at(self.cursor / RATE, self._tick) if slots else None
