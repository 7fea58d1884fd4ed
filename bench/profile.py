"""Where the time goes: profiles turned into short tables for BENCHMARKS.md.

Owns the summaries, not the load: `bench.proxy` runs the balancer and wrk, and calls
`record_pyspy()` (sampling an already running buddylb, installing py-spy into this venv
with pip when it is missing) or, when py-spy cannot attach, runs the balancer under
`python -m cProfile` and summarises its output with `cprofile_file_rows()`.
`cprofile_rows()` also serves the engine profile (`bench.engine.profile_decide`).

Rows are plain dicts: function label, samples or seconds, and the share of the total.
"""
from __future__ import annotations

import pstats
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

Log = Callable[[str], None]


def _label(file: str, line: int, name: str) -> str:
    parts = Path(file).parts
    for anchor in ("buddylb", "bench", "asyncio", "uvloop", "httptools", "ssl.py"):
        if anchor in parts:
            file = "/".join(parts[parts.index(anchor):])
            break
    else:
        file = Path(file).name if file.startswith("/") else file
    return f"{name} ({file}:{line})" if line else f"{name} ({file})" if file != "~" else name


def cprofile_rows(stats_source: Any, top: int = 14) -> list[dict[str, Any]]:
    """Top functions by own time from a cProfile.Profile or a stats file path."""
    st = pstats.Stats(stats_source) if not isinstance(stats_source, pstats.Stats) else stats_source
    total = sum(v[2] for v in st.stats.values()) or 1e-9  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": _label(file, line, name), "calls": nc, "own_s": tt, "cum_s": ct,
                     "own_share": tt / total})
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return rows[:top]


def cprofile_file_rows(path: Path, top: int = 14) -> list[dict[str, Any]]:
    return cprofile_rows(str(path), top)


# -- py-spy --------------------------------------------------------------------------
def pyspy_binary(log: Log) -> str | None:
    """py-spy next to this interpreter or on PATH; pip-installed into this venv when missing."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    found = shutil.which("py-spy")
    if found:
        return found
    log("profile: py-spy missing, installing it into this venv with pip")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        log(f"profile: pip install py-spy failed: {proc.stderr.strip()[-500:]}")
        return None
    return str(here) if here.exists() else shutil.which("py-spy")


def record_pyspy(binary: str, pid: int, seconds: int, out: Path, pin: list[str]) -> subprocess.CompletedProcess:
    """Sample `pid` for `seconds` into `out` (collapsed stacks, one line per stack)."""
    cmd = [*pin, binary, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
           "--format", "raw", "--function", "--nonblocking", "--output", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)


def collapsed_rows(path: Path, top: int = 14) -> dict[str, Any]:
    """Own and inclusive sample counts per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    area: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        area[_area(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    def rows(c: Counter[str], only_buddylb: bool = False) -> list[dict[str, Any]]:
        # inclusive: leave out the entry chain (cli, server.run) that is on every stack
        items = [(f, n) for f, n in c.most_common()
                 if not only_buddylb or ("buddylb/" in f and n < 0.9 * total)]
        return [{"function": f, "samples": n, "share": n / total if total else 0.0} for f, n in items[:top]]
    return {"samples": total, "own": rows(own), "inclusive_buddylb": rows(incl, True),
            "areas": [{"area": a, "samples": n, "share": n / total if total else 0.0} for a, n in area.most_common()]}


EVENT_LOOP = "uvloop, native (epoll, socket calls)"


def _area(frame: str) -> str:
    """Which part of the stack a leaf frame belongs to (buddylb.io, asyncio, ssl, ...).

    A leaf in asyncio's Runner.run means the sample was inside uvloop's compiled loop
    (polling, socket reads and writes, transport bookkeeping), which py-spy does not see into."""
    if frame.startswith("Runner.run (asyncio/runners.py"):
        return EVENT_LOOP
    inside = frame[frame.rfind("(") + 1:].rstrip(")")
    path = inside.split(":")[0]
    parts = path.split("/")
    if "buddylb" in parts:
        i = parts.index("buddylb")
        return ".".join(parts[i:i + 2]).removesuffix(".py")
    return parts[0].removesuffix(".py") if parts else "?"
