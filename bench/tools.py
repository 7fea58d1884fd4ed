"""The machine and its programs: what the proxy benchmark runs on and with.

Owns finding (and, when missing, installing with apt-get) haproxy, nginx and wrk; the
facts BENCHMARKS.md opens with (CPU model, cores, kernel, versions, load); CPU time of
a process tree from /proc; free loopback ports; and the `taskset` prefix that pins a
program to one core.  It starts no long-lived process (`bench.procs` does).
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable

Log = Callable[[str], None]
PROGRAMS = {"haproxy": "haproxy", "nginx": "nginx", "wrk": "wrk", "h2load": "nghttp2-client"}  # command -> Debian package
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def find_program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in SBIN:
        p = Path(d) / name
        if p.exists() and os.access(p, os.X_OK):
            return str(p)
    return None


def ensure_programs(log: Log, programs: dict[str, str] = PROGRAMS) -> dict[str, str | None]:
    """Paths of `programs` (haproxy, nginx and wrk by default; command -> Debian package);
    `apt-get update` then `apt-get install -y` the missing ones."""
    paths = {name: find_program(name) for name in programs}
    missing = [programs[n] for n, p in paths.items() if p is None]
    if missing:
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is None:
            log(f"tools: missing {', '.join(missing)} and not root (no sudo): what needs them is skipped")
            return paths
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log(f"tools: installing {', '.join(missing)} with apt-get")
        for cmd in ([*sudo, "apt-get", "update"], [*sudo, "apt-get", "install", "-y", *missing]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                log(f"tools: {' '.join(cmd)} failed: {proc.stderr.strip()[-800:]}")
                break
        paths = {name: find_program(name) for name in programs}
    return paths


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout + proc.stderr).strip()
    return text.splitlines()[0] if text else "?"


def versions(paths: dict[str, str | None]) -> dict[str, str]:
    out = {"python": f"{platform.python_implementation()} {platform.python_version()}"}
    for name, args in (("haproxy", ["-v"]), ("nginx", ["-v"]), ("wrk", ["-v"]), ("h2load", ["--version"])):
        path = paths.get(name)
        out[name] = _first_line([path, *args]) if path else "not installed"
    try:
        import uvloop

        out["uvloop"] = uvloop.__version__
    except ImportError:
        out["uvloop"] = "not installed"
    import ssl

    out["openssl (python)"] = ssl.OPENSSL_VERSION
    return out


def machine() -> dict[str, str | int | float]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_kb = int(m.group(1)) if m else 0
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "cpu": model,
        "cores": os.cpu_count() or 1,
        "memory_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_1m": round(load[0], 2),
    }


# -- CPU time --------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()  # after "pid (comm) ": field 3 onwards


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's master and worker)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None:
                parents.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime (fields 14 and 15 of /proc/PID/stat) summed over `pids`, in seconds."""
    ticks = 0
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            ticks += int(f[11]) + int(f[12])
    return ticks / CLK_TCK


def core_busy() -> dict[str, tuple[int, int]]:
    """Per core (cpu0, cpu1, ...): (busy, total) jiffies from /proc/stat, every process counted."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in vals]
            idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
            out[name] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def busy_pct(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {c: round(100 * (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]), 1)
            for c in after if c in before}


# -- ports and cores -------------------------------------------------------------------
def free_port(*hosts: str) -> int:
    """A TCP port free on every one of `hosts` (bound on the first, checked on the rest)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if all(_bindable(h, port) for h in hosts[1:]):
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pin(core: int) -> list[str]:
    """`taskset -c CORE` when there are two cores or more and taskset exists; else nothing."""
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(core)]
