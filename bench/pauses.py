"""Stalls the sticky table can cause at scale (issue 11), measured in process.

Owns three measurements on one table of `n` entries (4M in the full run), filled
through `StickyTable.insert` (the decision path's own insert) with distinct IPv4 keys
of the engine bench's configuration (ONE_TO_ONE, `sticky-table max-entries` = n):

- eviction: n/16 more new clients at capacity, every insert evicting the least
  recently used idle entry; each insert timed alone;
- sweep: the clock moved past the timeout, then `sweep(now, 512)` called as the
  server's sweeper calls it (`io/server.py`) until the table is empty; each call timed;
- show sticky database: the first page (50 rows) of the admin view on the full table,
  unfiltered and with filters (rserver, client prefix, farm + rserver), median of 5.

Every timed call is one event-loop step in service, so its duration is the pause it
causes.  Durations go into a log2 histogram (µs).  Nothing asserts on a timing.
"""
from __future__ import annotations

import gc
import resource
import statistics
import time
from typing import Any, Callable

from bench.engine import CONFIG, START_S, Engine

Log = Callable[[str], None]
BUCKETS_US = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10_000]


def histogram(durations_s: list[float], cpu_s: list[float] | None = None,
              worst: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = [0] * (len(BUCKETS_US) + 1)
    for d in durations_s:
        us = d * 1e6
        i = 0
        while i < len(BUCKETS_US) and us > BUCKETS_US[i]:
            i += 1
        counts[i] += 1
    labels = [f"<= {b} µs" for b in BUCKETS_US] + [f"> {BUCKETS_US[-1]} µs"]
    ordered = sorted(durations_s)
    return {"calls": len(durations_s), "max_us": (ordered[-1] * 1e6) if ordered else 0.0,
            "p99_us": ordered[int(len(ordered) * 0.99)] * 1e6 if ordered else 0.0,
            "over_1ms": sum(1 for d in durations_s if d > 1e-3),
            # CPU time of the same calls: on a shared machine a wall-clock spike can be
            # another process holding the core, not work done by the table
            "cpu_max_us": max(cpu_s) * 1e6 if cpu_s else None,
            "cpu_over_1ms": sum(1 for d in cpu_s if d > 1e-3) if cpu_s else None,
            "cpu_p999_us": sorted(cpu_s)[int(len(cpu_s) * 0.999)] * 1e6 if cpu_s else None,
            # what the longest step (by CPU) had besides the table's work: page faults taken and
            # times preempted in it (a kernel without IRQ time accounting also bills the
            # interrupts and softirqs served during a step to its CPU time)
            "cpu_worst": worst,
            "buckets": {lab: c for lab, c in zip(labels, counts) if c}}


class Worst:
    """The longest call by CPU time, with the page faults and preemptions inside it."""

    RU = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)

    def __init__(self) -> None:
        self.cpu = -1.0
        self.info: dict[str, Any] = {}

    def timed(self, call: Callable[[], Any], wall: list[float], cpu: list[float]) -> None:
        r0 = resource.getrusage(self.RU)
        a, c = time.perf_counter(), time.thread_time()
        call()
        w, cp = time.perf_counter() - a, time.thread_time() - c
        wall.append(w)
        cpu.append(cp)
        if cp > self.cpu:
            r1 = resource.getrusage(self.RU)
            self.cpu = cp
            self.info = {"cpu_us": cp * 1e6, "wall_us": w * 1e6, "minor_faults": r1.ru_minflt - r0.ru_minflt,
                         "major_faults": r1.ru_majflt - r0.ru_majflt, "preempted": r1.ru_nivcsw - r0.ru_nivcsw}


def fill(n: int) -> tuple[Engine, float]:
    engine = Engine.build(CONFIG.replace("max-entries 4194304", f"max-entries {n}"))
    table = engine.table
    now = START_S
    insert = table.insert
    for i in range(n):
        insert("alpha", (1 << 64) | ((0x0A000000 + i) << 32) | 0x7F000064, i & 1, ("lnx1", "lnx2")[(i >> 1) & 1],
               now, known_absent=True)
        now += 1e-6
    return engine, now


def run_pauses(n: int, log: Log = lambda s: None) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine, now = fill(n)
    table = engine.table
    log(f"pauses: {table.size:,} entries filled in {time.perf_counter() - t0:.1f}s")
    out: dict[str, Any] = {"entries": table.size, "capacity": table.max_entries}
    out["show_first_page"] = first_pages(engine, now)
    for name, p in out["show_first_page"].items():
        log(f"pauses: show sticky database, first page {name}: {p['median_ms']:.2f} ms ({p['rows']} rows)")

    gc.collect()
    evict: list[float] = []
    evict_cpu: list[float] = []
    worst = Worst()
    extra = max(1, n // 16)
    base = 0x0B000000
    insert = table.insert
    for i in range(extra):
        key = (1 << 64) | ((base + i) << 32) | 0x7F000064
        worst.timed(lambda: insert("alpha", key, 0, "lnx1", now, known_absent=True), evict, evict_cpu)
        now += 1e-6
    out["eviction"] = histogram(evict, evict_cpu, worst.info) | {"evictions": table.counters.evictions}
    log(f"pauses: eviction at capacity: {extra:,} inserts, max {out['eviction']['max_us']:.0f} µs, "
        f"over 1 ms: {out['eviction']['over_1ms']} (CPU max {out['eviction']['cpu_max_us']:.0f} µs, "
        f"p99.9 {out['eviction']['cpu_p999_us']:.0f} µs; longest: {out['eviction']['cpu_worst']})")

    now += table.scopes["alpha"].timeout + 1
    sweeps: list[float] = []
    sweeps_cpu: list[float] = []
    worst = Worst()
    while table.size:
        worst.timed(lambda: table.sweep(now, 512), sweeps, sweeps_cpu)
    out["sweep"] = histogram(sweeps, sweeps_cpu, worst.info) | {"budget": 512}
    log(f"pauses: sweep of {n:,} expired entries in {len(sweeps):,} calls, max {out['sweep']['max_us']:.0f} µs, "
        f"over 1 ms: {out['sweep']['over_1ms']} (CPU max {out['sweep']['cpu_max_us']:.0f} µs, "
        f"p99.9 {out['sweep']['cpu_p999_us']:.0f} µs; longest: {out['sweep']['cpu_worst']})")
    del engine, table
    gc.collect()
    return out


def first_pages(engine: Engine, now: float) -> dict[str, Any]:
    from buddylb.admin.views import show_sticky_database

    cases = {
        "unfiltered": {},
        "rserver lnx2": {"rserver": "lnx2"},
        "client 10.0.128.0/24": {"client": "10.0.128.0/24"},
        "farm decrypted rserver lnx1": {"farm": "decrypted", "rserver": "lnx1"},
    }
    out = {}
    for name, kw in cases.items():
        times, rows = [], 0
        for _ in range(5):
            a = time.perf_counter()
            rows = len(show_sticky_database(engine.snap, engine.tables, now, limit=50, **kw))
            times.append(time.perf_counter() - a)
        out[name] = {"median_ms": statistics.median(times) * 1e3, "max_ms": max(times) * 1e3, "rows": rows}
    return out
