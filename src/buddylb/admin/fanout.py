"""One admin API for the process group (`buddylb run --workers N`, issue 14 item 3).

Worker 0 serves the admin address the operator gave; workers 1..N-1 serve theirs on the
next ports (admin port + index), as before.  Worker 0's API answers for the whole group:
after the request passed its own front door (`admin.gate`, the token, the endpoint's
shape) it asks every peer the same question over loopback HTTP, with the same token, and
merges the answers here.  `show` merges tables and counters (a client lives on one
worker, so sticky entries are simply joined; counters are summed; configuration views
come from worker 0), `clear`, `set` and `reload` act on every worker and report each
worker's answer, and `/metrics` is one exposition whose samples carry a `worker` label.
The dashboard's views merge the same way: rates summed per sample interval, the buddy
map's connections and buddy hits summed, every worker's events (tagged with the worker).

Owns the merge rules and the peer client; it never decides anything about traffic and
never answers a peer's request (only worker 0 has peers, so nothing is asked twice).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from buddylb.admin.security import split_addr

PEER_TIMEOUT_S = 5.0


class PeerError(Exception):
    """A worker did not answer (it is restarting, or gone)."""


async def ask(addr: str, method: str, target: str, body: bytes, token: str | None) -> tuple[int, bytes]:
    """One request to a peer worker's admin API; (status, body)."""
    host, port = split_addr(addr)
    head = [f"{method} {target} HTTP/1.1", f"Host: {addr}", "Connection: close",
            f"Content-Length: {len(body)}"]
    if method == "POST":
        head.append("Content-Type: application/json")
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PEER_TIMEOUT_S)
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            raw = await asyncio.wait_for(reader.read(), PEER_TIMEOUT_S)
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError) as exc:
        raise PeerError(f"worker at {addr} did not answer: {exc or 'timeout'}") from exc
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    try:
        return int(status_line.split()[1]), payload
    except (IndexError, ValueError) as exc:
        raise PeerError(f"worker at {addr} answered something that is not HTTP") from exc


# -- merge rules: path -> f(list of each worker's `data`, worker 0 first) -> merged data -------
def _first(results: list[Any]) -> Any:
    return results[0]


def _concat(results: list[Any]) -> Any:
    return [row for r in results for row in r]


def _sum_into(target: dict, other: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        if isinstance(target.get(k), (int, float)) and isinstance(other.get(k), (int, float)):
            target[k] += other[k]


def _sticky_client(results: list[Any]) -> Any:
    """A client's entry lives on one worker: per scope, the answer that has the entry."""
    merged = {(s["context"], s["scope"]): s for s in results[0]}
    for r in results[1:]:
        for s in r:
            key = (s["context"], s["scope"])
            if key not in merged or (merged[key]["entry"] is None and s["entry"] is not None):
                merged[key] = s
    return list(merged.values())


_STATS = ("entries", "capacity", "hits", "misses", "buddy_hits", "resticks", "evictions", "expirations",
          "unstored", "no_server", "buddy_connections")


def _stats(results: list[Any]) -> Any:
    merged = {row["context"]: dict(row) for row in results[0]}
    for r in results[1:]:
        for row in r:
            if row["context"] in merged:
                _sum_into(merged[row["context"]], row, _STATS)
    return list(merged.values())


def _connections(results: list[Any], key: Callable[[dict], tuple], members: str) -> Any:
    """Configuration rows from worker 0, connection counts summed over every worker."""
    merged = {key(row): _copy(row, members) for row in results[0]}
    for r in results[1:]:
        for row in r:
            mine = merged.get(key(row))
            if mine is None:
                continue
            _sum_into(mine, row, ("connections",))
            for m, o in zip(mine.get(members, []), row.get(members, [])):
                _sum_into(m, o, ("connections",))
    return list(merged.values())


def _copy(row: dict, members: str) -> dict:
    out = dict(row)
    out[members] = [dict(m) for m in row.get(members, [])]
    return out


_IMPACT = ("entries", "stay", "open_connections", "follow_buddy", "restick", "keep", "no_server", "connections")


def _impact(results: list[Any]) -> Any:
    first = results[0]
    rows = {(r["context"], r["serverfarm"], r["scope"]): {**r, "outcomes": dict(r["outcomes"]), "to": dict(r["to"])}
            for r in first["serverfarms"]}
    totals = dict(first["totals"])
    for data in results[1:]:
        for r in data["serverfarms"]:
            mine = rows.get((r["context"], r["serverfarm"], r["scope"]))
            if mine is None:
                continue
            _sum_into(mine, r, _IMPACT)
            for field in ("outcomes", "to"):
                for k, v in r[field].items():
                    mine[field][k] = round(mine[field].get(k, 0) + v, 2)
        _sum_into(totals, data["totals"], tuple(totals))
    return {**first, "serverfarms": list(rows.values()), "totals": totals}


def _probes(results: list[Any]) -> Any:
    """Each worker probes on its own: per target, DOWN when any worker's verdict is, checks
    summed, and every worker's recent results in time order (each naming its worker)."""
    key = lambda r: (r["context"], r["probe"], r["serverfarm"], r["rserver"])  # noqa: E731
    merged = {key(r): {**r, "history": [{**h, "worker": 0} for h in r["history"]], "states": [r["state"]]}
              for r in results[0]}
    for i, rows in enumerate(results[1:], 1):
        for r in rows:
            mine = merged.get(key(r))
            if mine is None:
                continue
            mine["checks"] += r["checks"]
            mine["states"].append(r["state"])
            if r["state"] == "DOWN":
                mine.update(state="DOWN", consecutive_failures=max(mine["consecutive_failures"],
                                                                   r["consecutive_failures"]))
            mine["history"] += [{**h, "worker": i} for h in r["history"]]
    for row in merged.values():
        row["history"].sort(key=lambda h: h["ts"])
    return list(merged.values())


def _per_worker(results: list[Any]) -> Any:
    """Mutations: worker 0's answer, a summed `removed` if any, and every worker's own."""
    merged = dict(results[0])
    if "removed" in merged:
        merged["removed"] = sum(r["removed"] for r in results)
    if "reloaded" in merged:
        merged["reloaded"] = all(r["reloaded"] for r in results)
    merged["workers"] = [{"worker": i, **r} for i, r in enumerate(results)]
    return merged


# -- the dashboard's own views (admin.dashboard): rates, the map's counts, events ---------------
def _series(all_series: list[dict], every: float) -> dict:
    """Rate series of several workers summed per sample interval: each worker samples on its
    own clock, so points are matched by the interval their wall time falls in."""
    buckets: dict[int, dict[str, Any]] = {}
    for series in all_series:
        for i, t in enumerate(series["t"]):
            b = buckets.setdefault(int(t // every), {"requests": 0.0, "connections": 0.0, "decisions": {}})
            b["requests"] += series["requests"][i]
            b["connections"] += series["connections"][i]
            for outcome, values in series["decisions"].items():
                b["decisions"][outcome] = b["decisions"].get(outcome, 0.0) + values[i]
    order = sorted(buckets)
    outcomes = sorted({o for b in buckets.values() for o in b["decisions"]})
    return {"t": [round(k * every, 1) for k in order],
            "requests": [round(buckets[k]["requests"], 2) for k in order],
            "connections": [round(buckets[k]["connections"], 2) for k in order],
            "decisions": {o: [round(buckets[k]["decisions"].get(o, 0.0), 2) for k in order] for o in outcomes}}


def _overview(results: list[Any]) -> Any:
    merged = {**results[0], "workers": len(results),
              "open_connections": sum(r["open_connections"] for r in results), "contexts": {}}
    for name, ctx in results[0]["contexts"].items():
        theirs = [r["contexts"][name] for r in results if name in r["contexts"]]
        totals = {"requests": 0, "connections": 0, "decisions": {}}
        for c in theirs:
            _sum_into(totals, c["totals"], ("requests", "connections"))
            for o, n in c["totals"]["decisions"].items():
                totals["decisions"][o] = totals["decisions"].get(o, 0) + n
        merged["contexts"][name] = {**ctx, "totals": totals,
                                    "series": _series([c["series"] for c in theirs], results[0]["sample_every_s"])}
    return merged


def _map(results: list[Any]) -> Any:
    """Worker 0's map (configuration, states) with connections and buddy hits/s summed."""
    merged = json.loads(json.dumps(results[0]))  # a deep copy of plain JSON data
    for other in results[1:]:
        for name, ctx in merged.items():
            theirs = other.get(name)
            if theirs is None:
                continue
            for farm, their_farm in zip(ctx["serverfarms"], theirs["serverfarms"]):
                for m, o in zip(farm["rservers"], their_farm["rservers"]):
                    _sum_into(m, o, ("connections",))
            for g, their_g in zip(ctx["buddy_real_groups"], theirs["buddy_real_groups"]):
                for f, rate in their_g["buddy_hits_per_s"].items():
                    g["buddy_hits_per_s"][f] = round(g["buddy_hits_per_s"].get(f, 0.0) + rate, 2)
    return merged


def _events(results: list[Any]) -> Any:
    """Every worker's events, newest first, each naming the worker that saw it."""
    rows = [{**e, "worker": i} for i, r in enumerate(results) for e in r]
    return sorted(rows, key=lambda e: -e["ts"])


def windows(totals: list[int], offset: int, limit: int) -> list[tuple[int, int, int]]:
    """A page of the workers' sticky tables read one after the other (worker 0 first):
    which (worker, offset, limit) pieces make rows `offset .. offset+limit` of the whole."""
    out = []
    start = 0
    for worker, total in enumerate(totals):
        lo, hi = max(offset, start), min(offset + limit, start + total)
        if lo < hi:
            out.append((worker, lo - start, hi - lo))
        start += total
    return out


MERGE: dict[str, Callable[[list[Any]], Any]] = {
    "dashboard/overview": _overview,
    "dashboard/map": _map,
    "dashboard/events": _events,
    "show/sticky-database": _concat,
    "show/sticky-client": _sticky_client,
    "show/stats-sticky": _stats,
    "show/rserver": lambda rs: _connections(rs, lambda r: (r["context"], r["rserver"]), "serverfarms"),
    "show/serverfarm": lambda rs: _connections(rs, lambda r: (r["context"], r["serverfarm"]), "rservers"),
    "show/impact": _impact,
    "show/probe": _probes,
    "clear/sticky-database": _per_worker,
    "set/rserver": _per_worker,
    "reload": _per_worker,
}


def merge(path: str, results: list[Any]) -> Any:
    """The group's answer to `path` from each worker's (worker 0 first)."""
    return MERGE.get(path, _first)(results)


def merge_metrics(texts: list[bytes]) -> bytes:
    """One exposition: every worker's samples with a `worker` label, each family once."""
    seen: set[bytes] = set()
    out: list[bytes] = []
    for i, text in enumerate(texts):
        label = b'worker="%d"' % i
        for line in text.splitlines():
            if line.startswith(b"#"):
                if line not in seen:
                    seen.add(line)
                    out.append(line)
                continue
            if not line.strip():
                continue
            name, brace, rest = line.partition(b"{")
            if brace:
                out.append(name + b"{" + label + (b"," if not rest.startswith(b"}") else b"") + rest)
            else:
                metric, _, value = line.partition(b" ")
                out.append(metric + b"{" + label + b"} " + value)
    return b"\n".join(_grouped(out)) + b"\n"


def _grouped(lines: list[bytes]) -> list[bytes]:
    """Samples under their family's HELP/TYPE lines (the text format wants them together)."""
    families: dict[bytes, list[bytes]] = {}
    order: list[bytes] = []
    current = b""
    for line in lines:
        if line.startswith(b"# HELP ") or line.startswith(b"# TYPE "):
            current = line.split(b" ", 3)[2]
            if current not in families:
                families[current] = []
                order.append(current)
            families[current].append(line)
        else:
            name = line.partition(b"{")[0]
            fam = _family_of(name, families)
            if fam not in families:
                families[fam] = []
                order.append(fam)
            families[fam].append(line)
    return [ln for fam in order for ln in _help_first(families[fam])]


def _family_of(sample: bytes, families: dict[bytes, list[bytes]]) -> bytes:
    for suffix in (b"", b"_total", b"_created", b"_bucket", b"_sum", b"_count"):
        if suffix and sample.endswith(suffix) and sample[: -len(suffix)] in families:
            return sample[: -len(suffix)]
        if not suffix and sample in families:
            return sample
    return sample


def _help_first(lines: list[bytes]) -> list[bytes]:
    return [ln for ln in lines if ln.startswith(b"#")] + [ln for ln in lines if not ln.startswith(b"#")]


def decode(status: int, payload: bytes) -> Any:
    """A peer's `data`, or PeerError with its message."""
    try:
        reply = json.loads(payload)
    except ValueError as exc:
        raise PeerError(f"a worker answered {status} without JSON") from exc
    if status != 200 or not isinstance(reply, dict) or not reply.get("ok"):
        raise PeerError(reply.get("error") if isinstance(reply, dict) else f"a worker answered {status}")
    return reply["data"]
