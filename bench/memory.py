"""Memory per sticky entry, measured in a fresh process (`python -m bench.memory`).

Owns one measurement: grow one sticky table through the public decide() (every client
new, so every decision inserts) and report, at each checkpoint, the growth of the
process's resident set (RSS) — or, with `--tracemalloc`, of the memory Python has
allocated — divided by the number of entries.  A fresh process keeps freed memory of
earlier work from being reused and hiding in the figure.

What is counted: every page of the table's slot arrays and key index that the entries
touched (`core.slots`: the arrays are mapped for the table's capacity when it is made,
before the baseline, and cost RSS only as slots fill).  What is not: the client address strings (made before the baseline; in
service they belong to the connection, not to the table) and keys.addr_int's bounded
lru_cache, which is filled with other addresses before the baseline.

The parent calls `measure_memory()`; the child prints one JSON document on stdout.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.engine import START_S, Engine, make_clients

REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _warm_addr_cache() -> None:
    """Fill keys.addr_int's lru_cache (if any) so its bounded size is not counted per entry."""
    from buddylb.core import keys

    info = getattr(keys.addr_int, "cache_info", None)
    size = info().maxsize if info is not None else 0
    for a in make_clients(min(size or 0, 1 << 20) or 1, seed=99, first_octet=12):
        keys.addr_int(a)


def grow(checkpoints: list[int], use_tracemalloc: bool) -> dict[str, Any]:
    checkpoints = sorted(checkpoints)
    engine = Engine.build()
    clients = make_clients(checkpoints[-1])
    _warm_addr_cache()
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if use_tracemalloc else rss_bytes()
    rows = []
    done, now = 0, START_S
    for cp in checkpoints:
        t0 = time.perf_counter()
        _, now = engine.drive(engine.http, clients[done:cp], now)
        seconds = time.perf_counter() - t0
        inserted = cp - done
        done = cp
        gc.collect()
        used = (tracemalloc.get_traced_memory()[0] if use_tracemalloc else rss_bytes()) - base
        t = engine.table
        rows.append({
            "entries": t.size, "clients": cp, "bytes": used, "bytes_per_entry": used / max(t.size, 1),
            "rss_total": rss_bytes(), "unstored": t.counters.unstored, "evictions": t.counters.evictions,
            "insert_rate": inserted / seconds if seconds > 0 else 0.0, "inserted": inserted,
        })
    if use_tracemalloc:
        tracemalloc.stop()
    return {"method": "tracemalloc" if use_tracemalloc else "rss", "capacity": engine.table.max_entries,
            "checkpoints": rows}


def measure_memory(checkpoints: list[int], use_tracemalloc: bool = False, timeout: float = 600.0) -> dict[str, Any]:
    """Run `grow()` in a fresh interpreter and return its report."""
    cmd = [sys.executable, "-m", "bench.memory", "--checkpoints", ",".join(map(str, checkpoints))]
    if use_tracemalloc:
        cmd.append("--tracemalloc")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.memory exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="1000000", help="comma-separated entry counts, e.g. 1000000,4000000")
    ap.add_argument("--tracemalloc", action="store_true", help="count Python allocations instead of RSS")
    args = ap.parse_args(argv)
    checkpoints = [int(x.replace("_", "")) for x in args.checkpoints.split(",") if x]
    json.dump(grow(checkpoints, args.tracemalloc), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
