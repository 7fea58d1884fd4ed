"""The L7 timer wheel on a fake loop: deadlines fire never early, at most one STEP late,
re-arming later is free, and a disarmed connection is never called."""
from __future__ import annotations

from buddylb.io.wheel import STEP, Wheel


class FakeLoop:
    def __init__(self) -> None:
        self.t = 100.0
        self.calls: list = []

    def time(self) -> float:
        return self.t

    def call_at(self, when, cb):
        self.calls.append((when, cb))
        return self

    def run_until(self, t: float) -> None:
        while True:
            due = sorted((w, i) for i, (w, _) in enumerate(self.calls) if w <= t)
            if not due:
                break
            when, i = due[0]
            _, cb = self.calls.pop(i)
            self.t = max(self.t, when)
            cb()
        self.t = t


class Conn:
    def __init__(self, loop: FakeLoop) -> None:
        self.slot = None
        self.loop = loop
        self.fired: list[float] = []

    def fire(self) -> None:
        self.fired.append(self.loop.t)


def test_fires_at_or_just_after_the_deadline():
    loop = FakeLoop()
    wheel = Wheel(loop)  # type: ignore[arg-type]
    c = Conn(loop)
    wheel.arm(c, 101.02)
    loop.run_until(101.0)
    assert c.fired == []
    loop.run_until(102.0)
    assert len(c.fired) == 1 and 101.02 <= c.fired[0] <= 101.02 + STEP


def test_arming_later_keeps_the_earlier_bucket_and_disarm_cancels():
    loop = FakeLoop()
    wheel = Wheel(loop)  # type: ignore[arg-type]
    a, b = Conn(loop), Conn(loop)
    wheel.arm(a, 100.5)
    wheel.arm(a, 103.0)  # later: nothing moves (the exchange re-arms when it fires early)
    wheel.arm(b, 100.5)
    wheel.disarm(b)
    loop.run_until(101.0)
    assert len(a.fired) == 1 and a.fired[0] <= 100.5 + STEP and b.fired == []
    wheel.arm(a, 100.7)  # a deadline already passed is fired on the next tick
    loop.run_until(101.2)
    assert len(a.fired) == 2
    loop.run_until(110.0)
    assert loop.calls == []  # nothing armed: the wheel stops ticking


def test_a_connection_re_arming_inside_an_early_tick_is_not_lost():
    """uvloop's clock is in milliseconds: a tick may run a hair before its bucket's time;
    a deadline re-armed from inside it into that same bucket must still fire."""
    loop = FakeLoop()
    wheel = Wheel(loop)  # type: ignore[arg-type]
    c = Conn(loop)

    def fire() -> None:
        c.fired.append(loop.t)
        if len(c.fired) == 1:
            wheel.arm(c, loop.t + 0.0001)  # "not yet": look again

    c.fire = fire  # type: ignore[method-assign]
    wheel.arm(c, 100.04)  # the first bucket
    when, cb = loop.calls.pop()
    loop.t = when - 0.0004  # early, and after the deadline
    cb()
    loop.run_until(101.0)
    assert len(c.fired) == 2


def test_the_running_wheel_is_the_kept_one_while_its_loop_runs_and_a_new_one_on_another_loop() -> None:
    """L7Client finds its loop through the wheel (asyncio.get_running_loop costs a getpid
    system call per accept): the kept wheel serves only while its own loop runs."""
    import asyncio

    import uvloop

    from buddylb.io.wheel import running_wheel

    class Owner:
        wheel = None

    owner = Owner()

    async def which() -> tuple:
        return running_wheel(owner), asyncio.get_running_loop()

    first, loop1 = uvloop.run(which())
    assert first.loop is loop1 and owner.wheel is first
    second, loop2 = uvloop.run(which())  # the first loop no longer runs: a wheel of the new one
    assert second is not first and second.loop is loop2 and owner.wheel is second

    async def twice() -> bool:
        return running_wheel(owner) is running_wheel(owner) is owner.wheel

    assert uvloop.run(twice())
