"""`--workers N` under systemd: the master relays its workers' sd_notify states as one.

systemd listens to the main PID only (NotifyAccess=main), and a watchdog must fire when
*any* worker's loop is stuck, not only when all are.  So each worker notifies the master
(an abstract datagram socket the master binds, named in the worker's own NOTIFY_SOCKET)
and the master tells systemd:

* READY=1 once every worker has said READY=1;
* RELOADING=1 when it forwards SIGHUP, READY=1 once every worker has reloaded (said
  READY=1 again; a refused reload says it too);
* WATCHDOG=1 every half WATCHDOG_USEC, but only while *every* worker pinged within the
  last WATCHDOG_USEC: one wedged worker stops the pings and systemd restarts the service.

Rules: messages are accepted only from the worker pids (SCM_CREDENTIALS), since anyone
on the host can reach an abstract socket; the relay never blocks longer than `pump`'s
timeout and never raises into the supervisor loop.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import time
from typing import Callable

from buddylb.service.notify import Notifier


class WorkerRelay:
    def __init__(self, upstream: Notifier, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.clock = clock
        self.name = f"@buddylb-notify-{os.getpid()}-{os.urandom(6).hex()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.workers: set[int] = set()
        self.ready: set[int] = set()
        self.started = False
        self.reloading: set[int] | None = None  # workers yet to say READY=1 after SIGHUP
        self.pinged: dict[int, float] = {}
        self.last_ping_sent = 0.0

    def child_env(self) -> dict[str, str]:
        """The environment a worker's Notifier reads: this relay, the service's watchdog."""
        env = {"NOTIFY_SOCKET": self.name}
        if self.upstream.interval is not None:
            env["WATCHDOG_USEC"] = str(int(self.upstream.interval * 2_000_000))
        return env

    def add(self, pid: int) -> None:
        self.workers.add(pid)
        self.pinged[pid] = self.clock()

    def remove(self, pid: int) -> None:
        """A worker exited: it is no longer waited for nor required to ping."""
        self.workers.discard(pid)
        self.ready.discard(pid)
        self.pinged.pop(pid, None)
        if self.reloading is not None:
            self.reloading.discard(pid)

    def reload_begins(self) -> None:
        """Called as SIGHUP is forwarded to the workers."""
        self.upstream.reloading()
        self.reloading = set(self.workers)

    def handle(self, pid: int, fields: dict[str, str]) -> None:
        """One worker datagram (pid already checked)."""
        if fields.get("WATCHDOG") == "1":
            self.pinged[pid] = self.clock()
        if fields.get("READY") != "1":
            return
        if not self.started:
            self.ready.add(pid)
            if self.ready >= self.workers:
                self.started = True
                self.upstream.ready(f"{len(self.workers)} worker(s) in service")
        elif self.reloading is not None:
            self.reloading.discard(pid)
            if not self.reloading:
                self.reloading = None
                self.upstream.ready(f"{len(self.workers)} worker(s) reloaded")

    def tick(self) -> None:
        """Ping systemd if every worker pinged within WATCHDOG_USEC."""
        interval = self.upstream.interval
        now = self.clock()
        if interval is None or not self.started or now - self.last_ping_sent < interval:
            return
        if all(now - self.pinged.get(pid, 0.0) <= 2 * interval for pid in self.workers):
            self.upstream.watchdog()
            self.last_ping_sent = now

    def pump(self, timeout: float) -> None:
        """Take what the workers sent within `timeout` seconds, then tick."""
        deadline = self.clock() + timeout
        while True:
            try:
                readable = select.select([self.sock], [], [], max(0.0, deadline - self.clock()))[0]
            except InterruptedError:
                readable = []
            if not readable:
                break
            data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = next((struct.unpack("3i", payload[:12])[0] for level, kind, payload in anc
                        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), 0)
            if pid in self.workers:
                fields = dict(line.split("=", 1) for line in data.decode(errors="replace").splitlines() if "=" in line)
                self.handle(pid, fields)
        self.tick()

    def close(self) -> None:
        self.sock.close()
