"""Run wrk (https://github.com/wg/wrk) for a bounded time and read its report."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m)"


@dataclass
class WrkReport:
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50%", "99%", "max"
    socket_errors: dict[str, int] = field(default_factory=dict)  # only the non-zero kinds
    non_2xx: int = 0
    text: str = ""

    @property
    def clean(self) -> bool:
        return self.requests > 0 and not self.socket_errors and self.non_2xx == 0


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(text: str) -> WrkReport:
    """wrk's text report -> WrkReport. "Socket errors" and "Non-2xx or 3xx responses"
    lines appear only when non-zero; their absence means zero."""
    r = WrkReport(text=text)
    if m := re.search(r"(\d+) requests in " + _DURATION, text):
        r.requests, r.seconds = int(m.group(1)), _ms(m.group(2), m.group(3)) / 1000
    if m := re.search(r"Requests/sec:\s+([0-9.]+)", text):
        r.rps = float(m.group(1))
    for pct in ("50%", "75%", "90%", "99%"):
        if m := re.search(rf"^\s+{re.escape(pct)}\s+" + _DURATION, text, re.M):
            r.latency_ms[pct] = _ms(m.group(1), m.group(2))
    if m := re.search(r"Latency\s+\S+\s+\S+\s+" + _DURATION, text):
        r.latency_ms["max"] = _ms(m.group(1), m.group(2))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        kinds = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
        r.socket_errors = {k: v for k, v in kinds.items() if v}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        r.non_2xx = int(m.group(1))
    return r


def start(url: str, seconds: int, connections: int = 20, close: bool = False, delay_ms: int = 0,
          workdir: Path | None = None) -> subprocess.Popen:
    """Start wrk (one thread); `close` sends `Connection: close` (a new connection per request).

    `delay_ms` paces each connection (wrk's Lua `delay()`, a script written into
    `workdir`): a new-connection load at full speed leaves tens of thousands of
    127.0.0.1 ports in TIME_WAIT on wrk's side for a minute, which breaks anything that
    binds a loopback port without SO_REUSEADDR soon after."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    if delay_ms:
        if workdir is None:
            raise ValueError("delay_ms needs a workdir for wrk's script")
        script = workdir / "pace.lua"
        script.write_text(f"function delay()\n  return {int(delay_ms)}\nend\n")
        cmd += ["-s", str(script)]
    return subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, seconds: int) -> WrkReport:
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        raise RuntimeError("wrk did not finish in time:\n" + (out or ""))
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}:\n{out}")
    return parse(out)
