"""wrk: one bounded load run and the figures in its `--latency` report.

Owns the command line (threads, connections, duration, `Connection: close` for a new
connection per request, the core it is pinned to) and the parser.  wrk's byte units are
binary (1MB = 2^20 bytes); latencies are converted to milliseconds.  A run never lasts
longer than its duration plus a fixed grace: the subprocess is killed after that.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
GRACE_S = 20


@dataclass
class WrkResult:
    requests_per_s: float = 0.0
    mib_per_s: float = 0.0
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # connect/read/write/timeout/non2xx
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME[unit]


def parse(text: str) -> WrkResult:
    r = WrkResult(raw=text)
    for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        setattr(r, f"p{pct}_ms", _ms(value, unit))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    if m:
        r.requests = int(m.group(1))
        r.seconds = _ms(m.group(2), m.group(3)) / 1e3
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        r.requests_per_s = float(m.group(1))
    m = re.search(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", text, re.M)
    if m:
        r.mib_per_s = float(m.group(1)) * _BYTES[m.group(2)] / (1 << 20)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r.errors.update({k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups()) if int(v)})
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r.errors["non2xx"] = int(m.group(1))
    return r


def command(url: str, seconds: int, connections: int = 50, threads: int = 1, close: bool = False,
            pin: list[str] | None = None, script: str | None = None) -> list[str]:
    cmd = [*(pin or []), "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    if script:
        cmd += ["-s", script]
    return cmd + [url]


def run(url: str, seconds: int, connections: int = 50, threads: int = 1, close: bool = False,
        pin: list[str] | None = None, wrk_path: str = "wrk", script: str | None = None) -> WrkResult:
    cmd = command(url, seconds, connections, threads, close, pin, script)
    cmd[cmd.index("wrk")] = wrk_path
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + GRACE_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        r = parse(out)
        r.errors["wrk_killed"] = 1
        return r
    r = parse(proc.stdout + proc.stderr)
    if proc.returncode != 0 and not r.requests:
        r.errors["wrk_failed"] = proc.returncode or 1
    return r
