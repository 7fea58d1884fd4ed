"""Shared sticky store (Redis) vs the memory store: what `sticky-store redis://...` costs.

Owns two parts of `bench.run`, both against a real redis-server started here on a free
loopback port (`--save '' --appendonly no`, its own temp dir, pinned to the load core):

- `redis-proxy` (through the proxy): the L7 VIP of the l7 scenarios and the l7-close
  load (wrk, `Connection: close`, same threads / connections / duration), once against
  buddylb with the memory store and once against buddylb with the global config line
  `sticky-store redis://127.0.0.1:PORT/0 prefix bench: timeout 50`, everything else the
  same (`bench.configs`).  Both balancers are up for the whole part, pinned to the
  balancer core; runs alternate memory, redis, redis, memory, ... so drift on the shared
  machine hits both.  Redis `INFO commandstats` is read after the warm-up and after the
  run: how many commands Redis executed per request.  wrk connects from one
  source address, so this is the cheap case (one entry, served from the store's 1 s
  local cache; TTL refreshes batched every 100 ms).
- `redis-engine` (in process, the costly case): N distinct client addresses, each one
  decision through the bracket the data path uses (`core.store`, `Balancer.decide_shared`,
  tests/store/test_stores.py `Node`): locate, `await store.load`, `decide`,
  `await store.commit` with a redecide callback, the same code for `MemoryStore` and the
  real `RedisStore` (timeout 50 ms, as in the proxy config).  With Redis every decision is
  a load round trip (GET, a miss) and an insert-or-get (EVALSHA); round trips are
  counted on the client side (`count_round_trips`).  Then the same
  clients again once the 1 s cache has expired ("returning clients": one GET, no
  write).  Each decision's wall time is taken; the process is pinned to the balancer core
  during the passes, on the uvloop loop buddylb runs on.

Every process started here is stopped in a finally block (`bench.procs`).  Nothing here
asserts on a timing.
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

import redis

from bench import tools
from bench.configs import SMALL, VIP
from bench.engine import Engine, make_clients, shuffled
from bench.procs import Service, accepts
from bench.proxy import BALANCER_CORE, LOAD_CORE, SCENARIOS, BuddyLB, ProxyBench, first_backend, settings
from buddylb.core.decide import Flow, connection_closed, decide
from buddylb.core.store import MemoryStore, locate
from buddylb.store.redis import RedisStore

Log = Callable[[str], None]
REDIS_PROGRAMS = {"redis-server": "redis-server"}  # command -> Debian package
PREFIX = "bench:"
TIMEOUT_MS = 50
GOAL_RATIO = 0.8  # the Redis store costs at most 20 % of the memory store's new-connection rate
SCENARIO = "l7-close"  # the load of part 1
SECRET = b"b" * 32
STORES = ("memory", "redis")


def store_line(url: str) -> str:
    return f"sticky-store {url} prefix {PREFIX} timeout {TIMEOUT_MS}\n"


# -- the redis-server -------------------------------------------------------------------
class RedisService:
    """redis-server on a free loopback port, no persistence, pinned to the load core."""

    def __init__(self, workdir: Path, binary: str, name: str = "redis-server") -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.port = tools.free_port("127.0.0.1")
        self.service = Service(name, [*tools.pin(LOAD_CORE), binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.dir)], self.dir)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisService":
        self.service.start(self._ready, timeout=15)
        return self

    def _ready(self) -> bool:
        if not accepts("127.0.0.1", self.port)():
            return False
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def pids(self) -> list[int]:
        return tools.process_tree(self.service.pid) if self.service.alive() else []

    def commands(self) -> dict[str, int]:
        """Calls per command since start (`INFO commandstats`), e.g. {"get": 3, "evalsha": 1}."""
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in self.client.info("commandstats").items()}

    def stop(self) -> int | None:
        try:
            self.client.close()
        finally:
            return self.service.stop()


def _delta(before: dict[str, int], after: dict[str, int], skip: Sequence[str] = ("info",)) -> dict[str, int]:
    out = {k: v - before.get(k, 0) for k, v in after.items() if k not in skip}
    return {k: v for k, v in sorted(out.items()) if v}


def redis_version(binary: str | None) -> str:
    return tools._first_line([binary, "--version"]) if binary else "not installed"  # noqa: SLF001


# -- part 1: through the proxy ---------------------------------------------------------------
def _admin_sticky(lb: BuddyLB) -> dict[str, Any]:
    """Entries and counters from `GET /show/stats-sticky`, with the store status it reports."""
    with urllib.request.urlopen(f"http://{lb.admin}/show/stats-sticky", timeout=5) as r:
        body = json.loads(r.read())
    rows = body.get("data", []) if isinstance(body, dict) else body
    keep = ("entries", "hits", "misses", "buddy_hits", "resticks", "unstored")
    store = next((row.get("store") for row in rows if row.get("store")), None)
    return {"entries": sum(r.get("entries", 0) for r in rows),
            "detail": {k: sum(r.get(k, 0) for r in rows) for k in keep}, "store": store}


def run_store_proxy(workdir: Path, artifacts: Path, programs: dict[str, str | None], redis_binary: str,
                    seconds: int, rounds: int, log: Log) -> dict[str, Any]:
    """Part 1: the l7-close load on buddylb with the memory store and with the Redis store."""
    sc = SCENARIOS[SCENARIO]
    bench = ProxyBench(workdir, artifacts, programs, seconds, log)
    out: dict[str, Any] = {"settings": settings(seconds) | {"scenario": SCENARIO, "rounds": rounds,
                                                             "timeout_ms": TIMEOUT_MS, "prefix": PREFIX},
                           "runs": [], "balancers": {}}
    rds: RedisService | None = None
    services: dict[str, Service] = {}
    lbs: dict[str, BuddyLB] = {}
    try:
        bench.start_backends()
        rds = RedisService(workdir, redis_binary).start()
        out["redis"] = {"url": rds.url, "version": redis_version(redis_binary),
                        "command": " ".join(rds.service.cmd)}
        log(f"redis: redis-server on 127.0.0.1:{rds.port}")
        for kind in STORES:
            lb = BuddyLB(workdir, bench.ports(), True, bench.cert, label=f"buddylb-l7-{kind}-store")
            if kind == "redis":
                lb.config.write_text(store_line(rds.url) + lb.config.read_text())
            shutil.copy(lb.config, artifacts / f"{lb.dir.name}.cfg")
            lbs[kind] = lb
            services[kind] = lb.service()
            services[kind].start(lb.is_ready)
            out["balancers"][kind] = {"config": f"{lb.dir.name}.cfg", "backend_seen": first_backend(lb.ports)}
        order = [k for r in range(rounds) for k in (STORES if r % 2 == 0 else STORES[::-1])]
        for i, kind in enumerate(order, 1):
            lb, svc = lbs[kind], services[kind]
            if not svc.alive():
                log(f"redis-proxy: buddylb ({kind} store) is not running; run {i} skipped")
                continue
            out["runs"].append(_one_run(bench, rds, lb, svc, kind, i, sc, seconds, log))
        for kind in STORES:
            if services[kind].alive():
                out["balancers"][kind]["sticky"] = _admin_sticky(lbs[kind])
                out["balancers"][kind]["backend_seen_after"] = first_backend(lbs[kind].ports)
        out["redis"]["keys"] = sorted(rds.client.keys(f"{PREFIX}*"))[:10]
        out["redis"]["dbsize"] = rds.client.dbsize()
        out["redis"]["pttl_ms"] = {k: rds.client.pttl(k) for k in out["redis"]["keys"][:3]}
        out["redis"]["commands_total"] = _delta({}, rds.commands())
    except Exception as exc:  # a failure is a finding: keep what was measured
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"redis-proxy failed: {out['error']}")
    finally:
        for kind, svc in services.items():
            b = out["balancers"].setdefault(kind, {})
            b["returncode"] = svc.stop()
            b["stderr"] = svc.stderr_tail(6000)
            (artifacts / f"{lbs[kind].dir.name}.stderr").write_text(svc.stderr_tail(200_000))
        if rds is not None:
            out.setdefault("redis", {})["returncode"] = rds.stop()
        out["backends"] = bench.stop_backends()
    out["summary"] = summarize_proxy(out["runs"])
    return out


def _one_run(bench: ProxyBench, rds: RedisService, lb: BuddyLB, svc: Service, kind: str, i: int, sc: Any,
             seconds: int, log: Log) -> dict[str, Any]:
    mark: dict[str, Any] = {}
    pids = tools.process_tree(svc.pid)

    def after_warmup() -> None:
        mark.update(commands=rds.commands(), cpu=tools.cpu_seconds(rds.pids()), lb_cpu=tools.cpu_seconds(pids),
                    t=time.monotonic())

    log(f"redis-proxy: run {i}, buddylb with the {kind} store, {SCENARIO} load")
    r = bench.load(f"http://{VIP}:{lb.ports.vip_http}{SMALL}", sc.close, seconds, pids, after_warmup)
    wall = time.monotonic() - mark["t"]
    lb_cpu = tools.cpu_seconds(pids) - mark["lb_cpu"]
    cmds = _delta(mark["commands"], rds.commands())
    n = r.get("requests") or 0
    r |= {"run": i, "store": kind, "alive_after": svc.alive(), "redis_commands": cmds,
          "redis_cpu_pct": 100 * (tools.cpu_seconds(rds.pids()) - mark["cpu"]) / wall,
          "redis_commands_per_request": sum(cmds.values()) / n if n else None,
          "balancer_cpu_us_per_request": 1e6 * lb_cpu / n if n else None}
    log(f"redis-proxy: {kind} {r.get('requests_per_s', 0):,.0f} req/s, p50 {r.get('p50_ms')} ms, "
        f"p99 {r.get('p99_ms')} ms, buddylb CPU {r['balancer_cpu_us_per_request'] or 0:.0f} µs/request, "
        f"redis {cmds}")
    return r


def summarize_proxy(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per store: the mean over its runs (req/s, p50, p99, CPU); then redis / memory."""
    out: dict[str, Any] = {}
    for kind in STORES:
        mine = [r for r in runs if r["store"] == kind and r.get("requests")]
        if not mine:
            continue

        def mean(key: str) -> float | None:
            vals = [r[key] for r in mine if r.get(key) is not None]
            return statistics.fmean(vals) if vals else None

        out[kind] = {"runs": len(mine), "requests_per_s": mean("requests_per_s"), "p50_ms": mean("p50_ms"),
                     "p99_ms": mean("p99_ms"), "balancer_cpu_pct": mean("balancer_cpu_pct"),
                     "balancer_cpu_us_per_request": mean("balancer_cpu_us_per_request"),
                     "redis_cpu_pct": mean("redis_cpu_pct"), "requests": sum(r["requests"] for r in mine),
                     "errors": sum(sum((r.get("errors") or {}).values()) for r in mine),
                     "redis_commands": sum(sum(r["redis_commands"].values()) for r in mine),
                     "redis_commands_per_request": mean("redis_commands_per_request")}
    if "memory" in out and "redis" in out and out["memory"]["requests_per_s"]:
        ratio = out["redis"]["requests_per_s"] / out["memory"]["requests_per_s"]
        out["ratio"] = ratio
        out["goal"] = {"min_ratio": GOAL_RATIO, "meets": ratio >= GOAL_RATIO}
        # each round is one memory run next to one Redis run: the spread of these is the noise
        by_round: dict[int, dict[str, float]] = {}
        for r in runs:
            if r.get("requests_per_s"):
                by_round.setdefault((r["run"] - 1) // 2, {})[r["store"]] = r["requests_per_s"]
        out["round_ratios"] = [p["redis"] / p["memory"] for _, p in sorted(by_round.items())
                               if p.get("memory") and p.get("redis")]
        m, rd = out["memory"].get("balancer_cpu_us_per_request"), out["redis"].get("balancer_cpu_us_per_request")
        if m and rd:
            out["cpu_ratio"] = m / rd  # the rate ratio the CPU per request alone predicts
            out["added_cpu_us_per_request"] = rd - m
    return out


# -- part 2: in process, every decision a new client ------------------------------------------
def _pct(sorted_s: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted seconds, in microseconds."""
    if not sorted_s:
        return 0.0
    i = min(len(sorted_s) - 1, max(0, int(round(q * len(sorted_s))) - 1))
    return sorted_s[i] * 1e6


async def bracket_pass(eng: Engine, store: Any, clients: Sequence[str],
                       clock: Callable[[], float] = time.monotonic) -> tuple[list[float], dict[str, int], float]:
    """One decision per client through the data path's bracket; (each decision's seconds,
    outcomes, wall seconds of the pass).  The connection closes right after (untimed)."""
    snap, state, tables, vip = eng.snap, eng.state, eng.tables, eng.http
    table = tables[vip.context]
    dst = vip.address
    pc = time.perf_counter
    lat: list[float] = []
    outcomes: dict[str, int] = {}
    t_pass = pc()
    for c in clients:
        t0 = pc()
        flow = Flow(c, dst)
        now = clock()
        where = locate(snap, vip, flow, SECRET)
        if where is not None:
            await store.load(table, where[0], where[1], now)
        d = decide(snap, state, tables, vip, flow, now, SECRET)

        def redecide(d=d, flow=flow, now=now):  # type: ignore[no-untyped-def]
            connection_closed(state, d, now)
            return decide(snap, state, tables, vip, flow, now, SECRET)

        d = await store.commit(d, now, redecide)
        lat.append(pc() - t0)
        outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1
        connection_closed(state, d, now)
        store.closed(d, now)
    return lat, outcomes, pc() - t_pass


def _pass_figures(lat: list[float], wall: float, outcomes: dict[str, int]) -> dict[str, Any]:
    s = sorted(lat)
    return {"decisions": len(lat), "seconds": wall, "timed_seconds": sum(lat),
            "rate": len(lat) / wall if wall > 0 else 0.0, "p50_us": _pct(s, 0.50), "p99_us": _pct(s, 0.99),
            "max_us": s[-1] * 1e6 if s else 0.0, "outcomes": outcomes}


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return asyncio.new_event_loop


class _Pinned:
    """This process on the balancer core while it measures (redis-server is on the load core)."""

    def __enter__(self) -> "_Pinned":
        self.before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if self.before is not None and len(self.before) >= 2 and BALANCER_CORE in self.before:
            os.sched_setaffinity(0, {BALANCER_CORE})
            self.pinned = True
        else:
            self.pinned = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pinned and self.before is not None:
            os.sched_setaffinity(0, self.before)


def count_round_trips(store: RedisStore) -> dict[str, int]:
    """Count what the store's client sends: one write is one round trip (a command, or a
    whole pipeline).  Redis's own command counts include the commands a script runs."""
    counter = {"round_trips": 0}
    pool = store.client.connection_pool
    base = pool.connection_class

    class Counting(base):  # type: ignore[misc, valid-type]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter["round_trips"] += 1
            await super().send_packed_command(command, check_health)

    pool.connection_class = Counting
    return counter


async def round_trip_floor(url: str, n: int, timeout_s: float) -> dict[str, Any]:
    """What one redis-py round trip costs here: GET of a missing key, bare and inside
    asyncio.wait_for (as RedisStore calls it); microseconds, median and p99."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, decode_responses=True)
    out: dict[str, Any] = {"round_trips": n}
    try:
        for i in range(min(n, 200)):  # warm the connection and the code paths first
            await client.get(f"{PREFIX}floor:{i}")
        for name, wrap in (("bare", False), ("wait_for", True)):
            lat = []
            for i in range(n):
                t0 = time.perf_counter()
                coro = client.get(f"{PREFIX}floor:{i}")
                await (asyncio.wait_for(coro, timeout_s) if wrap else coro)
                lat.append(time.perf_counter() - t0)
            lat.sort()
            out[name] = {"p50_us": _pct(lat, 0.5), "p99_us": _pct(lat, 0.99), "mean_us": 1e6 * sum(lat) / n}
    finally:
        await client.aclose()
    return out


async def _engine_passes(rds: RedisService, n: int, rounds: int, log: Log, cache_s: float,
                         timeout_ms: int = TIMEOUT_MS) -> dict[str, Any]:
    clients = make_clients(n, seed=11, first_octet=12)
    returning = shuffled(clients, 12)
    passes: list[dict[str, Any]] = []
    order = [k for r in range(rounds) for k in (STORES if r % 2 == 0 else STORES[::-1])]
    fresh_sizes: list[int] = []
    for i, kind in enumerate(order, 1):
        eng = Engine.build()
        store: Any
        if kind == "redis":
            store = RedisStore(rds.url, prefix=f"{PREFIX}engine{i}:", timeout_s=timeout_ms / 1000, cache_s=cache_s)
            trips = count_round_trips(store)
            await store.start()
        else:
            store = MemoryStore()
            trips = {"round_trips": 0}
        try:
            for phase, who in (("new", clients), ("returning", returning)):
                if phase == "returning":
                    await asyncio.sleep(cache_s + 0.2)  # the Redis store's local copies are no longer valid
                gc.collect()
                before, sent = rds.commands(), trips["round_trips"]
                lat, outcomes, wall = await asyncio.wait_for(bracket_pass(eng, store, who), timeout=60 + n * 0.01)
                sent = trips["round_trips"] - sent
                fig = _pass_figures(lat, wall, outcomes)
                cmds = _delta(before, rds.commands())
                fig |= {"pass": i, "store": kind, "phase": phase, "redis_commands": cmds,
                        "round_trips": sent, "round_trips_per_decision": sent / len(lat)}
                if kind == "redis":
                    st = store.status()
                    fig["store_status"] = {k: st.get(k) for k in ("degraded", "errors", "last_error")}
                passes.append(fig)
                log(f"redis-engine: pass {i} {kind} {phase}: {fig['rate']:,.0f} decisions/s, "
                    f"p50 {fig['p50_us']:.0f} µs, p99 {fig['p99_us']:.0f} µs, {outcomes}, "
                    f"{sent / len(lat):.2f} round trips/decision, redis executed {cmds}")
            if kind == "redis":
                fresh_sizes.append(len(store.fresh))
        finally:
            if kind == "redis":
                await store.stop()
        del eng
    floor = await round_trip_floor(rds.url, min(n, 5000), TIMEOUT_MS / 1000)
    log(f"redis-engine: one redis-py round trip: {floor['bare']['p50_us']:.0f} µs bare, "
        f"{floor['wait_for']['p50_us']:.0f} µs inside wait_for (p50)")
    return {"passes": passes, "redis_fresh_entries_after": fresh_sizes, "round_trip_floor": floor}


def summarize_engine(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase and store: all passes pooled (decisions / seconds; percentiles of the mean)."""
    out: dict[str, Any] = {}
    for phase in ("new", "returning"):
        row: dict[str, Any] = {}
        for kind in STORES:
            mine = [p for p in passes if p["phase"] == phase and p["store"] == kind]
            if not mine:
                continue
            row[kind] = {"decisions": sum(p["decisions"] for p in mine), "seconds": sum(p["seconds"] for p in mine),
                         "p50_us": statistics.fmean(p["p50_us"] for p in mine),
                         "p99_us": statistics.fmean(p["p99_us"] for p in mine),
                         "round_trips_per_decision": statistics.fmean(p["round_trips_per_decision"] for p in mine),
                         "errors": sum((p.get("store_status") or {}).get("errors") or 0 for p in mine),
                         "degraded": any((p.get("store_status") or {}).get("degraded") for p in mine)}
            row[kind]["rate"] = row[kind]["decisions"] / row[kind]["seconds"]
        if "memory" in row and "redis" in row:
            m, r = row["memory"], row["redis"]
            row["ratio"] = r["rate"] / m["rate"]
            row["added_p50_us"] = r["p50_us"] - m["p50_us"]
            row["added_p99_us"] = r["p99_us"] - m["p99_us"]
            row["added_mean_us"] = 1e6 / r["rate"] - 1e6 / m["rate"]
        out[phase] = row
    return out


def run_store_engine(n: int, rounds: int, redis_binary: str, log: Log, cache_s: float = 1.0,
                     timeout_ms: int = TIMEOUT_MS) -> dict[str, Any]:
    """Part 2: N distinct clients through the store bracket, MemoryStore vs RedisStore
    (`cache_s`: the store's local validity, 1 s as in service; the smoke test shortens it,
    and lengthens `timeout_ms`: it counts commands, and a loaded CI machine must not turn
    one slow round trip into a degraded pass)."""
    out: dict[str, Any] = {"clients": n, "rounds": rounds, "timeout_ms": timeout_ms, "cache_s": cache_s,
                           "loop": _loop_factory().__module__.split(".")[0]}
    with tempfile.TemporaryDirectory(prefix="buddylb-bench-redis-") as tmp:
        rds = RedisService(Path(tmp), redis_binary)
        try:
            rds.start()
            out["redis"] = {"version": redis_version(redis_binary), "command": " ".join(rds.service.cmd)}
            log(f"redis-engine: {n:,} distinct clients, {rounds} round(s), redis-server on 127.0.0.1:{rds.port}")
            with _Pinned() as pinned, asyncio.Runner(loop_factory=_loop_factory()) as runner:
                out["pinned"] = f"core {BALANCER_CORE}" if pinned.pinned else "not pinned"
                out |= runner.run(_engine_passes(rds, n, rounds, log, cache_s, timeout_ms))
            out["redis"]["dbsize"] = rds.client.dbsize()
            out["redis"]["used_memory"] = rds.client.info("memory").get("used_memory")
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            log(f"redis-engine failed: {out['error']}")
        finally:
            out.setdefault("redis", {})["returncode"] = rds.stop()
    out["summary"] = summarize_engine(out.get("passes", []))
    return out


def redis_program(log: Log) -> str | None:
    return tools.ensure_programs(log, REDIS_PROGRAMS)["redis-server"]


if __name__ == "__main__":  # a quick look without bench.run: python -m bench.store [N]
    exe = tools.find_program("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed")
    res = run_store_engine(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, 1, exe,
                           lambda s: print(s, file=sys.stderr))
    print(json.dumps(res["summary"], indent=1))
