"""Engine figures (sans-IO): decisions per second through the public `decide()`.

Owns the in-process measurements of the decision path over N distinct clients:
- insert: every client is new (rule 2, outcome `new`), so every decision inserts;
- hit: the same clients again, in another random order (rule 3, `sticky_hit`);
- buddy: each client alternates between the two farms of one buddy sticky group
  (the SPEC §2 example: farm http behind :80, farm decrypted behind :443, sticky groups
  stick-cart and stick-credit in buddy sticky group alpha), so every decision is a
  `buddy_hit` (rule 4);
- floor: a bare dict lookup plus one attribute update over the same keys, in the same
  order as the hit pass: what one Python dict access costs on this machine, the unit
  every rate above is divided by.

The engine is built as tests/core/engine.py builds it (parse_text -> validate ->
compile_config; RuntimeState(); one StickyTable per context) from the ONE_TO_ONE
configuration of tests/core/configs.py with `sticky-table max-entries 4194304`.
Client addresses are made before any clock starts; the clock handed to decide()
advances 1 µs per decision so every entry carries its own timestamp, as in service.
Only decide() is timed (no connection_closed()), with the cyclic GC left on, as in
service.  Memory per entry is measured in a fresh process (`bench.memory`).

Nothing here opens a socket, and nothing asserts on a timing.
"""
from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from buddylb.config.parser import parse_text
from buddylb.config.validate import validate
from buddylb.core.compile import compile_config
from buddylb.core.decide import Flow, decide
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable
from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE

MAX_ENTRIES = 4_194_304
CONFIG = ONE_TO_ONE.replace(
    "service-policy input int", f"sticky-table max-entries {MAX_ENTRIES}\nservice-policy input int"
)
TARGETS = {"hit": 0.25, "insert": 0.2, "buddy": 0.2}  # minimum rate as a fraction of the floor (issue 11)
BYTES_PER_ENTRY_TARGET = 96
STEP_S = 1e-6  # the clock advances this much per decision
START_S = 1000.0

Log = Callable[[str], None]


def make_clients(n: int, seed: int = 1, first_octet: int = 10) -> list[str]:
    """`n` distinct IPv4 source addresses in FIRST_OCTET.0.0.0/8, in random order."""
    if not 0 < n <= 1 << 24:
        raise ValueError(f"between 1 and {1 << 24} clients, not {n}")
    rng = random.Random(seed)
    return [f"{first_octet}.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in rng.sample(range(1 << 24), n)]


def shuffled(items: Sequence[str], seed: int = 2) -> list[str]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


@dataclass
class Engine:
    """The decision engine with the state a running buddylb keeps next to it."""

    snap: Snapshot
    state: RuntimeState
    tables: dict[str, StickyTable]
    http: Vip  # :80, farm http, sticky group stick-cart
    https: Vip  # :443, farm decrypted, sticky group stick-credit (same buddy sticky group)

    @classmethod
    def build(cls, text: str = CONFIG) -> "Engine":
        cfg, diags = parse_text(text, "bench.cfg")
        diags = list(diags) + list(validate(cfg, Path(".")))
        errors = [str(d) for d in diags if d.severity == "error"]
        if errors:
            raise RuntimeError("the bench configuration does not validate:\n" + "\n".join(errors))
        snap = compile_config(cfg, Path("."))
        tables = {ctx.name: StickyTable.for_context(ctx) for ctx in snap.contexts.values()}
        return cls(snap, RuntimeState(), tables, snap.vips[HTTP], snap.vips[HTTPS])

    @property
    def table(self) -> StickyTable:
        return self.tables[self.http.context]

    def drive(self, vip: Vip, clients: Sequence[str], now: float) -> tuple[float, float]:
        """One decision per client on `vip`; returns (seconds, the clock afterwards)."""
        snap, state, tables = self.snap, self.state, self.tables
        dst = vip.address
        step = STEP_S
        t0 = time.perf_counter()
        for c in clients:
            decide(snap, state, tables, vip, Flow(c, dst), now)
            now += step
        return time.perf_counter() - t0, now


@dataclass
class PathRate:
    """One timed pass: how many decisions, how long, and which outcomes they had."""

    path: str
    decisions: int
    seconds: float
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "decisions": self.decisions, "seconds": self.seconds,
                "rate": self.rate, "outcomes": dict(self.outcomes)}


class _Slot:
    __slots__ = ("stamp",)

    def __init__(self) -> None:
        self.stamp = 0.0


class Floor:
    """A dict of the client addresses -> a one-slot object: lookup + attribute update per key."""

    def __init__(self, clients: Sequence[str]) -> None:
        self.table = {c: _Slot() for c in clients}
        self.passes: list[float] = []

    def run(self, order: Sequence[str]) -> None:
        gc.collect()
        table, now, step = self.table, START_S, STEP_S
        t0 = time.perf_counter()
        for c in order:
            table[c].stamp = now
            now += step
        self.passes.append(time.perf_counter() - t0)

    def result(self, n: int) -> PathRate:
        return PathRate("floor", n, statistics.median(self.passes), {"passes": len(self.passes)})


def _outcome_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def _timed(engine: Engine, name: str, runs: list[tuple[Vip, Sequence[str]]], now: float) -> tuple[PathRate, float]:
    gc.collect()
    before = engine.table.counters.as_dict()
    seconds = 0.0
    decisions = 0
    for vip, clients in runs:
        dt, now = engine.drive(vip, clients, now)
        seconds += dt
        decisions += len(clients)
    return PathRate(name, decisions, seconds, _outcome_delta(before, engine.table.counters.as_dict())), now


def measure_paths(engine: Engine, clients: Sequence[str], order: Sequence[str],
                  between: Callable[[], None] = lambda: None) -> dict[str, PathRate]:
    """insert (all new), hit (all sticky_hit), buddy (all buddy_hit), in that order, on one engine.

    `between` runs before, between and after the passes (the floor, so that it sees the
    same machine as the paths do when other work comes and goes)."""
    now = START_S
    between()
    insert, now = _timed(engine, "insert", [(engine.http, clients)], now)
    between()
    hit, now = _timed(engine, "hit", [(engine.http, order)], now)
    between()
    buddy, now = _timed(engine, "buddy", [(engine.https, order), (engine.http, order)], now)
    between()
    return {"insert": insert, "hit": hit, "buddy": buddy}


def run_engine(n: int, log: Log = lambda s: None, seed: int = 1) -> dict[str, Any]:
    """Every in-process engine figure for `n` clients, as JSON-ready data."""
    t0 = time.perf_counter()
    clients = make_clients(n, seed)
    order = shuffled(clients, seed + 1)
    log(f"engine: {n:,} client addresses generated in {time.perf_counter() - t0:.1f}s")
    floor_runner = Floor(clients)
    engine = Engine.build()
    paths = measure_paths(engine, clients, order, lambda: floor_runner.run(order))
    floor = floor_runner.result(len(order))
    log(f"engine: floor {floor.rate:,.0f} lookups/s (median of {len(floor_runner.passes)} passes)")
    for p in paths.values():
        log(f"engine: {p.path} {p.rate:,.0f} decisions/s ({p.rate / floor.rate:.3f}x floor) {p.outcomes}")
    table = engine.table
    out: dict[str, Any] = {
        "clients": n,
        "floor": floor.as_dict() | {"pass_rates": [n / s for s in floor_runner.passes]},
        "paths": {k: p.as_dict() | {"ratio": p.rate / floor.rate, "target": TARGETS[k]} for k, p in paths.items()},
        "table": {"entries": table.size, "capacity": table.max_entries, **table.counters.as_dict()},
        "addr_int_cache": _addr_cache_info(),
    }
    del engine, clients, order, floor_runner
    gc.collect()
    return out


def _addr_cache_info() -> dict[str, int] | None:
    """keys.addr_int's lru_cache counters, if it still has one (what 1M clients do to it)."""
    from buddylb.core import keys

    info = getattr(keys.addr_int, "cache_info", None)
    if info is None:
        return None
    ci = info()
    return {"hits": ci.hits, "misses": ci.misses, "maxsize": ci.maxsize or 0, "currsize": ci.currsize}


def profile_decide(n: int, top: int = 14) -> dict[str, Any]:
    """cProfile over a hit pass and a buddy pass of `n` clients (after an untimed insert pass)."""
    from bench.profile import cprofile_rows

    import cProfile

    clients = make_clients(n, seed=7, first_octet=11)
    order = shuffled(clients, 8)
    engine = Engine.build()
    _, now = engine.drive(engine.http, clients, START_S)
    prof = cProfile.Profile()
    prof.enable()
    _, now = engine.drive(engine.http, order, now)
    _, now = engine.drive(engine.https, order, now)
    prof.disable()
    return {"decisions": 2 * n, "rows": cprofile_rows(prof, top)}
