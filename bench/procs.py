"""Long-lived processes of a benchmark run (nginx, buddylb, HAProxy), always stopped.

Owns starting a program in its own process group with stdout/stderr in files, waiting
until it serves, and stopping the whole group (SIGTERM, then SIGKILL after a grace
period).  Every Service started is remembered until it is stopped, so `stop_all()`
(called from a finally block and at exit) leaves nothing running, even after an error
or Ctrl-C.  It only ever signals the process groups it created.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

_LIVE: list["Service"] = []


class Service:
    def __init__(self, name: str, cmd: list[str], workdir: Path, env: dict[str, str] | None = None,
                 stop_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.cmd = cmd
        self.workdir = workdir
        self.env = env
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready: Callable[[], bool], timeout: float = 20.0) -> "Service":
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdout=out, stderr=err, env=self.env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        _LIVE.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited {self.proc.returncode} at start:\n{self.stderr_tail()}")
            if ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f}s:\n{self.stderr_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> int | None:
        """The stop signal (SIGTERM) to the process group, SIGKILL after `grace` seconds; the exit code."""
        if self.proc is None:
            return None
        if self in _LIVE:
            _LIVE.remove(self)
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if _group_members(self.proc.pid):  # stragglers (nginx workers) keep the group id reserved
            _signal_group(self.proc.pid, signal.SIGKILL)
        self.returncode = self.proc.returncode
        return self.returncode

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5: process group
            out.append(int(d))
    return out


def stop_all() -> None:
    for s in list(_LIVE):
        s.stop(grace=5.0)


atexit.register(stop_all)


def accepts(host: str, port: int) -> Callable[[], bool]:
    """A readiness check: a TCP connection to host:port succeeds."""
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return check
