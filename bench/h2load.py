"""h2load (nghttp2): one bounded HTTP/2 load run and its figures, shaped like `bench.wrk`'s.

Owns the command line (clients, concurrent streams per client, duration, warm-up, the
core it is pinned to) and the parser.  h2load prints no percentiles, so it writes one
line per request to a log file (`--log-file`: start, status, elapsed µs) and p50/p99
come from there.  A run never lasts longer than its duration plus a fixed grace.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from bench.wrk import GRACE_S, WrkResult

CLIENTS = 10  # h2 connections
STREAMS = 10  # concurrent streams on each: 100 requests in flight, like 50-100 wrk connections


def command(url: str, seconds: int, log_file: str, pin: list[str] | None = None, h2load: str = "h2load",
            warmup_s: int = 1) -> list[str]:
    return [*(pin or []), h2load, "-c", str(CLIENTS), "-m", str(STREAMS), "-t", "1", "-D", str(max(1, int(seconds))),
            f"--warm-up-time={warmup_s}", f"--log-file={log_file}", url]


def parse(text: str, log_lines: list[str] | None = None) -> WrkResult:
    r = WrkResult(raw=text)
    m = re.search(r"^finished in ([\d.]+)(ms|s), ([\d.]+) req/s, ([\d.]+)(B|KB|MB|GB)/s", text, re.M)
    if m:
        r.seconds = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        r.requests_per_s = float(m.group(3))
        r.mib_per_s = float(m.group(4)) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m.group(5)] / (1 << 20)
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", text, re.M)
    if m:
        r.requests = int(m.group(4))
        for key, value in (("failed", m.group(5)), ("errored", m.group(6)), ("timeout", m.group(7))):
            if int(value):
                r.errors[key] = int(value)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if m and int(m.group(3)) + int(m.group(4)):
        r.errors["non2xx"] = int(m.group(3)) + int(m.group(4))
    elapsed = sorted(int(parts[2]) for parts in (ln.split("\t") for ln in log_lines or []) if len(parts) >= 3
                     and parts[2].strip().isdigit())
    if elapsed:
        r.p50_ms = elapsed[len(elapsed) // 2] / 1000
        r.p99_ms = elapsed[min(len(elapsed) - 1, int(len(elapsed) * 0.99))] / 1000
    return r


def run(url: str, seconds: int, pin: list[str] | None = None, h2load: str = "h2load", warmup_s: int = 1) -> WrkResult:
    """One run of `warmup_s` + `seconds`; the figures count the `seconds` only.  A caller that
    measures the balancer's CPU around the run warms up in a run of its own and passes
    `warmup_s=0` here, or the warm-up's CPU would be billed to the measured requests."""
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        log_file = str(Path(tmp) / "requests.log")
        cmd = command(url, seconds, log_file, pin, h2load, warmup_s)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup_s + GRACE_S)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            r = parse(out)
            r.errors["h2load_killed"] = 1
            return r
        lines = Path(log_file).read_text().splitlines() if Path(log_file).exists() else []
        r = parse(proc.stdout + proc.stderr, lines)
        if proc.returncode != 0 and not r.requests:
            r.errors["h2load_failed"] = proc.returncode or 1
        return r
