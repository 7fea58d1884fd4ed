"""`make bench` entry point: `python -m bench.run [--quick] [--only SCENARIO ...]`.

Owns the plan (which parts run, with which sizes and durations), the results file and
the one place BENCHMARKS.md is written.  Parts, in order:

  engine          decisions/s on the insert, hit and buddy paths vs the dict floor
  memory          bytes per sticky entry (RSS at N and, full run only, at 4M; tracemalloc)
  pauses          longest sweep / eviction step and first page of show sticky database at 4M entries
  engine-profile  cProfile of decide() on the hit and buddy paths (full run only)
  direct-*        wrk straight at nginx (the ceiling)
  l7-*, l4-*, tls-*  buddylb, HAProxy and the bare-relay ceiling (`bench.relay`) side by side,
                  in rounds: each scenario's seconds split into `--rounds` runs per balancer,
                  the balancers in turn, the order reversed every other round, so a drift of
                  this shared host linear in time cancels out of the ratios (`bench.rounds`)
                  (l7-varied: a distinct target per request, `bench/varied.lua`)
  h2-keepalive    HTTP/2 on the TLS VIP by h2load (`bench.h2load`), buddylb and HAProxy
  websocket       WebSocket echo through the HTTP VIP: buddylb, HAProxy, the ceiling (`bench.websocket`)
  redis-proxy     buddylb with the Redis sticky store vs the memory store, l7-close load (`bench.store`)
  redis-engine    the store bracket in process, every decision a new client: RedisStore vs MemoryStore
  profile         py-spy (or cProfile) of buddylb under the L7 keep-alive load (full run only)

Defaults take about 8-10 minutes; `--quick` about 3 (200,000 clients, 3 s runs, no 4M
check, no profiles; the store parts with 5,000 distinct clients and one memory/Redis
round instead of 20,000 and three).  A proxy scenario's seconds per balancer are split
into 2 rounds, each run rounded up to whole seconds: 2 x 5 s (full), 2 x 2 s (quick),
each run after its own 1 s warm-up.  `--only redis` runs both store parts.
`--render-only` rewrites BENCHMARKS.md from the last results.  Raw results go to
bench-out/results.json; with `--only`, the new sections replace the same sections of the
previous results and BENCHMARKS.md is rendered from the merge (each section says when it
was measured).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import engine, memory, pauses, procs, proxy, report, store, tools, websocket

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "bench-out"
PROXY_PARTS = [*proxy.DIRECT, *proxy.SCENARIOS]
STORE_PARTS = ["redis-proxy", "redis-engine"]
PARTS = ["engine", "memory", "pauses", "engine-profile", *PROXY_PARTS, "websocket", *STORE_PARTS, "profile"]
ALIASES = {
    "proxy": PROXY_PARTS,
    "direct": list(proxy.DIRECT),
    "l7": ["l7-keepalive", "l7-varied", "l7-close"],
    "l4": ["l4-keepalive", "l4-close", "l4-bulk"],
    "tls": ["tls-keepalive", "tls-handshake"],
    "h2": ["h2-keepalive"],
    "engine-all": ["engine", "memory", "pauses", "engine-profile"],
    "redis": STORE_PARTS,
}
FULL = {"pauses": 4_000_000, "clients": 1_000_000, "memory": [1_000_000, 4_000_000], "tracemalloc": True, "engine_profile": 100_000,
        "seconds": 10, "rounds": 2, "profile_s": 10, "store_clients": 20_000, "store_rounds": 3}
QUICK = {"pauses": 200_000, "clients": 200_000, "memory": [200_000], "tracemalloc": False, "engine_profile": 0,
         "seconds": 3, "rounds": 2, "profile_s": 0, "store_clients": 5_000, "store_rounds": 1}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def selection(only: list[str] | None, plan: dict[str, Any]) -> list[str]:
    if not only:
        chosen = list(PARTS)
        if not plan["engine_profile"]:
            chosen.remove("engine-profile")
        if not plan["profile_s"]:
            chosen.remove("profile")
        return chosen
    chosen = []
    for word in (w.strip() for item in only for w in item.split(",")):
        names = ALIASES.get(word, [word])
        for n in names:
            if n not in PARTS:
                raise SystemExit(f"bench: unknown scenario {word!r}; choose from: {', '.join(PARTS + list(ALIASES))}")
            if n not in chosen:
                chosen.append(n)
    return chosen


def run_engine_parts(chosen: list[str], plan: dict[str, Any]) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    if "engine" in chosen:
        sections["engine"] = engine.run_engine(plan["clients"], log)
    if "memory" in chosen:
        mem: dict[str, Any] = {"targets": {"bytes_per_entry": engine.BYTES_PER_ENTRY_TARGET}}
        log(f"memory: RSS growth at {', '.join(f'{c:,}' for c in plan['memory'])} entries (fresh process)")
        mem["rss"] = memory.measure_memory(plan["memory"], timeout=900)
        if plan["tracemalloc"]:
            log(f"memory: tracemalloc at {plan['memory'][0]:,} entries (fresh process)")
            mem["tracemalloc"] = memory.measure_memory(plan["memory"][:1], use_tracemalloc=True, timeout=900)
        sections["memory"] = mem
    if "pauses" in chosen:
        log(f"pauses: eviction, sweep and show sticky database on {plan['pauses']:,} entries")
        sections["pauses"] = pauses.run_pauses(plan["pauses"], log)
    if "engine-profile" in chosen:
        n = plan["engine_profile"] or 100_000
        log(f"engine-profile: cProfile of decide(), {n:,} clients, hit + buddy passes")
        sections["engine-profile"] = engine.profile_decide(n)
    return sections


def run_proxy_parts(chosen: list[str], plan: dict[str, Any], programs: dict[str, str | None]) -> dict[str, Any]:
    wanted = [n for n in chosen if n in PROXY_PARTS]
    if not wanted and "profile" not in chosen:
        return {}
    if not all(programs.values()):
        missing = [n for n, p in programs.items() if not p]
        log(f"proxy: skipped, missing {', '.join(missing)}")
        return {"proxy-skipped": {"missing": missing}}
    profile_s = (plan["profile_s"] or 10) if "profile" in chosen else 0
    with tempfile.TemporaryDirectory(prefix="buddylb-bench-") as tmp:
        out = proxy.run_proxy(wanted, Path(tmp), OUT_DIR, programs, plan["seconds"], profile_s, log,
                              plan["rounds"])
    sections: dict[str, Any] = {"proxy-settings": out["settings"], "backends": out["backends"]}
    sections.update({f"direct:{k}": v for k, v in out["direct"].items()})
    sections.update({f"scenario:{k}": v for k, v in out["scenarios"].items()})
    sections.update({f"balancer:{k}": v for k, v in out["balancers"].items()})
    if "profile" in out:
        sections["profile"] = out["profile"]
    return sections


def run_websocket_part(chosen: list[str], plan: dict[str, Any], programs: dict[str, str | None]) -> dict[str, Any]:
    if "websocket" not in chosen:
        return {}
    if not programs.get("haproxy"):
        log("websocket: skipped, haproxy is not installed")
        return {"websocket": {"skipped": "haproxy is not installed"}}
    with tempfile.TemporaryDirectory(prefix="buddylb-bench-") as tmp:
        return {"websocket": websocket.run_websocket(Path(tmp), OUT_DIR, programs, plan["seconds"], log)}


def run_store_parts(chosen: list[str], plan: dict[str, Any], programs: dict[str, str | None],
                    meta: dict[str, Any]) -> dict[str, Any]:
    """The shared sticky store (Redis) against the memory store: through the proxy, and in process."""
    wanted = [n for n in STORE_PARTS if n in chosen]
    if not wanted:
        return {}
    redis_server = store.redis_program(log)
    meta["versions"]["redis-server"] = store.redis_version(redis_server)
    sections: dict[str, Any] = {}
    if redis_server is None:
        log("redis: skipped, redis-server is not installed")
        return {n: {"skipped": "redis-server is not installed"} for n in wanted}
    if "redis-proxy" in wanted:
        if not (programs.get("nginx") and programs.get("wrk")):
            sections["redis-proxy"] = {"skipped": "nginx or wrk is not installed"}
        else:
            rounds = plan.get("store_rounds", 1)
            log(f"redis-proxy: buddylb, memory store vs Redis store, {store.SCENARIO} load, {rounds} round(s)")
            with tempfile.TemporaryDirectory(prefix="buddylb-bench-") as tmp:
                sections["redis-proxy"] = store.run_store_proxy(Path(tmp), OUT_DIR, programs, redis_server,
                                                                plan["seconds"], rounds, log)
    if "redis-engine" in wanted:
        sections["redis-engine"] = store.run_store_engine(plan.get("store_clients", 20_000),
                                                          plan.get("store_rounds", 1), redis_server, log)
    return sections


def measure(chosen: list[str], plan: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Run the chosen parts; every process started is stopped, whatever happens."""
    try:
        sections = run_engine_parts(chosen, plan)
        if any(n in chosen for n in [*PROXY_PARTS, "profile", "redis-proxy", "websocket"]):
            programs = tools.ensure_programs(log)
            meta["versions"] = tools.versions(programs)
            sections.update(run_proxy_parts(chosen, plan, programs))
            sections.update(run_websocket_part(chosen, plan, programs))
        else:
            programs = {n: tools.find_program(n) for n in tools.PROGRAMS}
            meta["versions"] = tools.versions(programs)
        sections.update(run_store_parts(chosen, plan, programs, meta))
    finally:
        procs.stop_all()
    return sections


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description="buddylb benchmarks -> BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true", help="about 2 minutes: 200k clients, 3 s runs, no profiles")
    ap.add_argument("--only", action="append", metavar="SCENARIO",
                    help=f"run only these (repeatable, comma-separated): {', '.join(PARTS + list(ALIASES))}")
    ap.add_argument("--clients", type=int, help="engine clients (default 1,000,000; --quick 200,000)")
    ap.add_argument("--seconds", type=int, help="seconds per wrk run, for a proxy scenario split into the rounds "
                    "(default 10; --quick 3)")
    ap.add_argument("--rounds", type=int, help="rounds per proxy scenario, the balancers in turn in each, the order "
                    "reversed every other round; even, so a linear drift cancels (default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="the report to write")
    ap.add_argument("--render-only", action="store_true", help="measure nothing: rewrite the report from "
                    "bench-out/results.json")
    args = ap.parse_args(argv)
    if args.render_only:
        args.out.write_text(report.render(json.loads((OUT_DIR / "results.json").read_text())))
        log(f"bench: wrote {args.out} from {OUT_DIR / 'results.json'}")
        return 0

    plan = dict(QUICK if args.quick else FULL)
    if args.clients:
        plan["clients"] = args.clients
        plan["memory"] = [args.clients] + [c for c in plan["memory"][1:] if c > args.clients]
    if args.seconds:
        plan["seconds"] = args.seconds
    if args.rounds is not None:
        if args.rounds < 1:
            raise SystemExit("bench: --rounds must be at least 1")
        plan["rounds"] = args.rounds
    chosen = selection(args.only, plan)
    OUT_DIR.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally blocks
    started = time.monotonic()
    meta = {"machine": tools.machine(), "mode": "quick" if args.quick else "full", "plan": plan,
            "only": chosen if args.only else None}
    log(f"bench: {meta['mode']} run of {', '.join(chosen)}")
    sections = measure(chosen, plan, meta)
    meta["wall_s"] = time.monotonic() - started
    stamp = {"date": meta["machine"]["date"], "mode": meta["mode"]}
    results = merge(OUT_DIR / "results.json", meta, {k: v | {"measured": stamp} for k, v in sections.items()},
                    partial=bool(args.only))
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=1, default=str))
    args.out.write_text(report.render(results))
    log(f"bench: wrote {args.out} in {meta['wall_s']:.0f}s (raw results in {OUT_DIR / 'results.json'})")
    return 0


def merge(previous: Path, meta: dict[str, Any], sections: dict[str, Any], partial: bool) -> dict[str, Any]:
    """A full run replaces everything; an `--only` run replaces just the sections it measured."""
    old: dict[str, Any] = {}
    if partial and previous.exists():
        try:
            old = json.loads(previous.read_text()).get("sections", {})
        except (OSError, ValueError):
            old = {}
    return {"meta": meta, "sections": old | sections}


if __name__ == "__main__":
    sys.exit(main())
