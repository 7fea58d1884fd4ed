"""What one client costs the shared sticky store (issue 15, SCALING.md): measured here.

`python -m bench.scaling [N]` starts its own redis-server (free loopback port, no
persistence, temp dir; stopped in `finally`) and measures, with the data path's own
store code (`RedisStore`, `store.record`, the decision bracket of `bench.store`):

- memory per entry: `MEMORY USAGE` of entries as the store writes them (mean of a
  sample) and the growth of `used_memory` per entry over N entries (which adds the
  expiry table and the dictionary's buckets), against the former one-hash-per-entry
  layout written the same way;
- Redis work per decision, new and returning clients: commands Redis ran (`INFO
  commandstats`, scripts' inner commands included), client round trips, and bytes in and
  out at Redis (`INFO stats` net counters, less the INFO calls' own bytes);
- node-side cost: process CPU seconds per decision, MemoryStore vs RedisStore;
- the anti-entropy write-back rate (entries per second for a pass of N entries).

It prints one JSON document; SCALING.md quotes it.  Nothing here asserts a timing.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine import Engine, make_clients, shuffled
from bench.store import PREFIX, RedisService, bracket_pass, count_round_trips
from buddylb.core.keys import ip_key
from buddylb.core.store import MemoryStore
from buddylb.store import antientropy, record
from buddylb.store.redis import RedisStore


def _redis_usec(rds: RedisService) -> dict[str, tuple[int, int]]:
    """command -> (calls, CPU microseconds Redis spent in it), from `INFO commandstats`."""
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for k, v in rds.client.info("commandstats").items()}


def _redis_cpu(rds: RedisService) -> float:
    """CPU seconds the redis-server process has used (user + system: commands, scripts,
    network I/O), from `INFO cpu`."""
    c = rds.client.info("cpu")
    return float(c["used_cpu_user"]) + float(c["used_cpu_sys"])


def _net(rds: RedisService) -> tuple[int, int]:
    s = rds.client.info("stats")
    return int(s["total_net_input_bytes"]), int(s["total_net_output_bytes"])


def _net_cost_of_probe(rds: RedisService) -> tuple[int, int]:
    """Bytes one `_net` call itself adds (its INFO request and reply), to subtract."""
    a = _net(rds)
    b = _net(rds)
    return b[0] - a[0], b[1] - a[1]


def memory_per_entry(rds: RedisService, n: int) -> dict[str, Any]:
    eng = Engine.build()
    scope = eng.snap.contexts[eng.http.context].scopes[next(iter(eng.snap.contexts[eng.http.context].scopes))]
    farms = tuple(f"lnx{i + 1}" for i in range(len(scope.farms)))
    out: dict[str, Any] = {"entries": n, "scope_farms": len(scope.farms)}
    for layout in ("string", "hash"):
        rds.client.flushall()
        base = int(rds.client.info("memory")["used_memory"])
        pipe = rds.client.pipeline(transaction=False)
        keys = []
        for i in range(n):
            key = ip_key(scope, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", eng.http.address)
            if layout == "string":
                rk = record.entry_key(PREFIX, eng.http.context, scope, key)
                pipe.set(rk, record.pack(0, farms), px=3_600_000)
            else:  # the layout before issue 15: PREFIX CONTEXT:SCOPE:KEY, fields last and r:FARM
                rk = f"{PREFIX}{eng.http.context}:{scope.name}:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}->" \
                     f"{eng.http.address}"
                pipe.hset(rk, mapping={"last": scope.farms[0], **{f"r:{f}": r for f, r in zip(scope.farms, farms)}})
                pipe.pexpire(rk, 3_600_000)
            keys.append(rk)
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        used = int(rds.client.info("memory")["used_memory"]) - base
        sample = keys[:: max(1, n // 200)]
        usage = [int(rds.client.memory_usage(k, samples=0)) for k in sample]
        out[layout] = {"example_key": keys[0], "example_value": rds.client.get(keys[0]) if layout == "string" else
                       rds.client.hgetall(keys[0]), "memory_usage_bytes": sum(usage) / len(usage),
                       "used_memory_per_entry_bytes": used / n}
    rds.client.flushall()
    return out


async def _per_decision(rds: RedisService, n: int) -> dict[str, Any]:
    clients = make_clients(n, seed=21, first_octet=14)
    out: dict[str, Any] = {"clients": n}
    probe_in, probe_out = _net_cost_of_probe(rds)
    for kind in ("memory", "redis"):
        eng = Engine.build()
        store: Any = MemoryStore()
        trips = {"round_trips": 0}
        if kind == "redis":
            # 1 s per operation: this counts operations and bytes, and one slow round trip on a
            # shared machine must not turn the pass degraded (then nothing would be counted)
            store = RedisStore(rds.url, prefix=f"{PREFIX}scale:", timeout_s=1.0, cache_s=0.5)
            trips = count_round_trips(store)
            await store.start()
        phases: dict[str, Any] = {}
        try:
            for phase, who in (("new", clients), ("returning", shuffled(clients, 5))):
                if phase == "returning":
                    await asyncio.sleep(0.7)  # past the local copies' validity
                await asyncio.sleep(0.25)  # the previous phase's batched TTL refreshes are sent
                rcpu0 = _redis_cpu(rds)
                cmd0, net0, sent0, cpu0 = _redis_usec(rds), _net(rds), trips["round_trips"], time.process_time()
                lat, outcomes, wall = await bracket_pass(eng, store, who)
                cpu = time.process_time() - cpu0
                await asyncio.sleep(0.25)  # this phase's TTL refreshes (one pipeline per 100 ms) go out
                cmd1, net1 = _redis_usec(rds), _net(rds)
                cmds = {k: v[0] - cmd0.get(k, (0, 0))[0] for k, v in cmd1.items()
                        if k != "info" and v[0] - cmd0.get(k, (0, 0))[0]}
                usec = 1e6 * (_redis_cpu(rds) - rcpu0)
                phases[phase] = {"outcomes": outcomes, "decisions_per_s": len(lat) / wall,
                                 "cpu_us_per_decision": 1e6 * cpu / len(lat),
                                 "redis_commands_per_decision": {k: v / len(lat) for k, v in sorted(cmds.items())},
                                 "round_trips_per_decision": (trips["round_trips"] - sent0) / len(lat),
                                 "redis_process_cpu_us_per_decision": usec / len(lat),
                                 "bytes_to_redis_per_decision": (net1[0] - net0[0] - probe_in) / len(lat),
                                 "bytes_from_redis_per_decision": (net1[1] - net0[1] - probe_out) / len(lat)}
                if kind == "redis":
                    st = store.status()
                    phases[phase]["store"] = {k: st.get(k) for k in ("degraded", "errors", "repairs")}
            if kind == "redis":
                t0 = time.monotonic()
                rds.client.flushall()
                written, kept = await antientropy.write_back(store.conn, store.prefix, eng.tables, time.monotonic, 1.0)
                dt = time.monotonic() - t0
                phases["write_back"] = {"entries": written + kept, "written": written, "seconds": dt,
                                        "entries_per_s": (written + kept) / dt, "rate_limit": antientropy.RATE}
        finally:
            if kind == "redis":
                await store.stop()
        out[kind] = phases
    return out


def run(n: int) -> dict[str, Any]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="buddylb-scaling-") as tmp:
        rds = RedisService(Path(tmp), exe)
        try:
            rds.start()
            out: dict[str, Any] = {"redis": rds.client.info("server")["redis_version"], "date": time.strftime("%F")}
            out["memory"] = memory_per_entry(rds, n)
            out["per_decision"] = asyncio.run(_per_decision(rds, min(n // 10, 20_000)))
            return out
        finally:
            rds.stop()


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000), indent=1))
