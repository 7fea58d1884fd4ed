"""The systemd notification protocol (sd_notify(3)), written out: one datagram per state.

Owns the conversation with the service manager named by `$NOTIFY_SOCKET`: `READY=1` once
`buddylb run` serves, `RELOADING=1` (with `MONOTONIC_USEC`, as systemd >= 253 asks) and
`READY=1` around a reload, `STOPPING=1` on drain, and `WATCHDOG=1` pings.  The pings come
from a task on the event loop itself, so a loop that stops turning stops pinging and
systemd's `WatchdogSec=` restarts the process (SPEC §4).

Rules: never raise into the caller (a missing or full socket is logged once; the data
path must not depend on the supervisor); without `$NOTIFY_SOCKET` every call is a no-op.
An address starting with '@' is in the abstract namespace (a leading NUL byte).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

log = logging.getLogger("buddylb.notify")


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: the clock systemd compares MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(value: str) -> str | bytes | None:
    """$NOTIFY_SOCKET as a sendto() address: a path, or '@name' -> b'\\0name'."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock: and other transports are not spoken here


def watchdog_interval(env: dict[str, str], pid: int) -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises),
    or None when no watchdog is asked of *this* process (WATCHDOG_PID names another)."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (owner and owner != str(pid)):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """sd_notify to one socket; built from the environment once, at start-up."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.address = socket_address(env.get("NOTIFY_SOCKET", ""))
        self.interval = watchdog_interval(env, os.getpid()) if self.address is not None else None
        self.sock: socket.socket | None = None
        self.failed = False
        self.sent = 0
        if env.get("NOTIFY_SOCKET") and self.address is None:
            log.warning("NOTIFY_SOCKET=%s: only unix socket addresses are supported; not notifying",
                        env["NOTIFY_SOCKET"])

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of KEY=VALUE lines; False (logged once) when it cannot be sent."""
        if self.address is None:
            return False
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self.sock.setblocking(False)
            self.sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self.failed:
                log.warning("cannot notify the service manager at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
            self.failed = True
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", "STATUS=reloading")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    async def watchdog_loop(self) -> None:
        """Ping while the loop turns; a blocked loop misses pings and systemd acts."""
        if self.interval is None:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
