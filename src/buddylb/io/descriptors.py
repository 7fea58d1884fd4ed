"""The descriptor budget (issue 13 item 2, SPEC §5): how many client connections may be
open at once, so the process never meets EMFILE in normal operation.

At start-up buddylb raises its soft RLIMIT_NOFILE to the hard limit, counts the
descriptors already open (log files, store, listeners), and keeps a reserve for probes
(one per probe target) and the admin API (its connection cap). What remains is shared by
client connections, two descriptors each (client and server): `maxconn` is that share
halved, or the configured `maxconn N` if lower (a higher one is lowered, with a warning:
HAProxy refuses to start instead; we prefer serving).

Accept pauses at `maxconn`: the listeners stop accepting (their sockets keep listening,
so new clients wait in the kernel's backlog instead of being reset), and resume once
open connections fall below the resume mark. Pure arithmetic here; `listeners.py`
pauses and resumes.
"""
from __future__ import annotations

import errno
import os
import resource
from dataclasses import dataclass, field
from typing import Callable

SPARE = 32  # descriptors nobody counts: a reload's new listener or TLS file, DNS, a log reopen
OVERSHOOT = SPARE // 4  # clients served beyond maxconn (accepted in the same batch as the last one)
RESUME_AT = 0.95  # accept again when open connections fall to this share of maxconn
ADMIN_CONNECTIONS = 64  # the admin API's connection cap (admin/gate.py), kept in reserve


@dataclass(slots=True)
class AcceptState:
    """What `/metrics` shows of the budget: the limit, whether accept is paused now, how
    often it paused, how many clients were closed at accept beyond the overshoot, and
    how often the descriptor table was full."""

    maxconn: int = 0
    paused: bool = False
    pauses: int = 0
    refused: int = 0
    failed: int = 0  # times the descriptor table was found full (accept would fail: EMFILE)
    vip_pauses: int = 0  # times a VIP stopped accepting at its `conn-limit max`
    # per VIP name (`A:P`, `A:P/udp`): times it reached its `conn-limit max` (TCP: accept
    # paused; UDP: new flows dropped), and UDP datagrams dropped for it (io/udp.py)
    limit_pauses: dict = field(default_factory=dict)
    limit_dropped: dict = field(default_factory=dict)
    # the client protocols report opens and closes only while this is true: accept is
    # paused, or a VIP has a conn-limit (no cost per connection otherwise)
    watch_close: bool = False
    limits: dict = field(default_factory=dict)  # VIP key -> (max, min) of its conn-limit
    vip_open: dict = field(default_factory=dict)  # VIP key -> open client connections (limited VIPs)
    # set by the listeners: a close resumes accept on that event, not at the next poll
    on_release: Callable[[tuple[str, int]], None] | None = None
    on_vip_full: Callable[[tuple[str, int]], None] | None = None

    def sync(self) -> None:
        self.watch_close = self.paused or bool(self.limits)

    def opened(self, key: tuple[str, int]) -> None:
        """A client connection of VIP `key` is open (called only while `limits`)."""
        limit = self.limits.get(key)
        if limit is not None:
            n = self.vip_open[key] = self.vip_open.get(key, 0) + 1
            if n >= limit[0] and self.on_vip_full is not None:
                self.on_vip_full(key)

    def released(self, key: tuple[str, int]) -> None:
        """A client connection of VIP `key` closed (called only while `watch_close`)."""
        n = self.vip_open.get(key)
        if n is not None:
            self.vip_open[key] = max(0, n - 1)  # opened before a reload added the limit: not counted
        if self.on_release is not None:
            self.on_release(key)


@dataclass(frozen=True, slots=True)
class Budget:
    nofile: int  # the soft limit in force
    in_use: int  # open at start-up
    reserved: int  # probes + admin API + SPARE
    maxconn: int
    derived: int  # what the limit allows
    configured: int | None

    @property
    def resume_at(self) -> int:
        return max(0, min(self.maxconn - 1, int(self.maxconn * RESUME_AT)))

    def describe(self) -> str:
        how = f"maxconn {self.maxconn:,}" + (" (configured)" if self.configured == self.maxconn else
                                           " (derived from the descriptor limit)")
        return (f"{how}: {self.nofile:,} descriptors, {self.in_use} in use at start, {self.reserved} kept for "
                "probes and the admin API, two per client connection")


def raise_nofile() -> int:
    """Raise the soft descriptor limit to the hard one (unprivileged, like HAProxy's ulimit-n)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else hard


def open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir used
    except OSError:
        return 16


def room(n: int = 1) -> bool:
    """True when this process can open `n` more descriptors (none is kept open).

    Accept failures are invisible otherwise: libuv meets EMFILE in its own accept loop,
    then accepts and closes every client waiting in the backlog (its "emfile trick") and
    reports nothing to Python (uvloop 0.23: measured). Opening /dev/null is the cheapest
    way to ask whether the next accepts would fail."""
    fds: list[int] = []
    try:
        for _ in range(n):
            fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
        return False
    finally:
        for fd in fds:
            os.close(fd)
    return True


def plan(nofile: int, in_use: int, probes: int, admin: int, configured: int | None) -> Budget:
    reserved = probes + admin + SPARE
    derived = max(1, (nofile - in_use - reserved) // 2)
    maxconn = min(configured, derived) if configured else derived
    return Budget(nofile, in_use, reserved, maxconn, derived, configured)
