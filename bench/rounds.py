"""Rounds: the turn order of the balancers in a proxy scenario, and one figure from many runs.

Why rounds.  The bench runs on a shared 2-core VM whose speed drifts over minutes: in
one full run buddylb's L7 keep-alive took 28.1 µs of CPU per request, quiet runs minutes
later 21-23 µs, while HAProxy and the ceiling, measured later in that run, were not hit
as hard.  When each balancer ran all its scenarios in one block, in a fixed order, the
drift between the blocks decided the ratios more than the code did.  So every scenario
is measured in `rounds` short runs per balancer, the balancers taking turns inside a
round and the order reversed every other round (buddylb, haproxy, ceiling; then
ceiling, haproxy, buddylb; ...).  With an even number of rounds each balancer's runs sit
at the same mean time, so a drift linear in time falls on all of them alike and cancels
out of the ratios; what is left (drift faster than a round) shows as the spread of the
per-round figures, which are kept.

How the runs of one balancer in one scenario add up (`aggregate`): requests/s (and
MiB/s) is the total over the total measured seconds; CPU µs per request is the total
CPU over the total requests; CPU % and "core busy" are over the total wall time;
errors are summed; the load average is the highest seen; p50 and p99 are the request-weighted mean of the runs' own (a
percentile of the union cannot be recovered from the runs' percentiles).  Plain data
in, plain data out: nothing here measures, starts a process or reads the clock.
"""
from __future__ import annotations

from typing import Any, Sequence

ROUNDS = 2  # even: a linear drift cancels (a pair of mirrored rounds is the smallest such plan)


def order(kinds: Sequence[str], index: int) -> list[str]:
    """The turn order of round `index` (0-based): as given in even rounds, reversed in odd ones."""
    return list(kinds) if index % 2 == 0 else list(reversed(kinds))


def round_seconds(seconds: int, rounds: int) -> int:
    """Seconds of one run when a scenario's `seconds` are split into `rounds` runs: rounded up
    (wrk and h2load take whole seconds), so a scenario is never measured for less than asked."""
    return max(1, -(-seconds // max(1, rounds)))


def _seconds(run: dict[str, Any]) -> float:
    """The run's measured time, as the load tool counted it: requests over its own rate (wrk's
    rate is over its "requests in 5.00s"; h2load's over `-D` alone, while its "finished in"
    includes the warm-up), else the duration it printed, else the wall time."""
    if run.get("requests") and run.get("requests_per_s"):
        return run["requests"] / run["requests_per_s"]
    return run.get("seconds") or run.get("wall_s") or 0.0


def _weighted(runs: Sequence[dict[str, Any]], key: str, weight: Any) -> float | None:
    pairs = [(r[key], weight(r)) for r in runs if r.get(key) is not None and weight(r)]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _total(runs: Sequence[dict[str, Any]], key: str) -> float | None:
    """The sum of `key` over the runs, None when one run lacks it (a partial sum would mislead)."""
    values = [r.get(key) for r in runs]
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


def _core_busy(runs: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per core, the runs' busy % weighted by their wall time: the busy share of all their time."""
    out = {}
    for core in sorted({c for r in runs for c in (r.get("core_busy_pct") or {})}):
        shares = [{"pct": (r.get("core_busy_pct") or {}).get(core), "wall_s": r.get("wall_s")} for r in runs]
        pct = _weighted(shares, "pct", lambda x: x["wall_s"])
        if pct is not None:
            out[core] = round(pct, 1)
    return out


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One balancer's figures in one scenario from its runs (`ProxyBench.load` results, each with
    its "round" and "position"), in the keys of a single run, plus "rounds": the runs themselves."""
    if not runs:
        return {}
    seconds = sum(_seconds(r) for r in runs)
    wall = sum(r.get("wall_s") or 0.0 for r in runs)
    requests = sum(r.get("requests") or 0 for r in runs)
    cpu = _total(runs, "balancer_cpu_s")
    backend = _total(runs, "backend_cpu_s")
    idle = _total(runs, "idle_balancers_cpu_s")
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in (r.get("errors") or {}).items():
            errors[k] = errors.get(k, 0) + v
    out: dict[str, Any] = {
        "requests": requests,
        "seconds": seconds,
        "wall_s": wall,
        "requests_per_s": requests / seconds if seconds else 0.0,
        "mib_per_s": sum((r.get("mib_per_s") or 0.0) * _seconds(r) for r in runs) / seconds if seconds else 0.0,
        "p50_ms": _weighted(runs, "p50_ms", lambda r: r.get("requests")),
        "p99_ms": _weighted(runs, "p99_ms", lambda r: r.get("requests")),
        "errors": errors,
        "balancer_cpu_s": cpu,
        "balancer_cpu_pct": 100 * cpu / wall if cpu is not None and wall else None,
        "balancer_cpu_us_per_request": 1e6 * cpu / requests if cpu is not None and requests else None,
        "backend_cpu_s": backend,
        "backend_cpu_pct": 100 * backend / wall if backend is not None and wall else None,
        # the other balancers, up on the same core and waiting for their turn: how idle they were
        "idle_balancers_cpu_pct": 100 * idle / wall if idle is not None and wall else None,
        "core_busy_pct": _core_busy(runs),
        "loadavg_1m": max((r["loadavg_1m"] for r in runs if r.get("loadavg_1m") is not None), default=None),
        "wrk": runs[0].get("wrk"),
        "rounds": [{k: v for k, v in r.items() if k != "wrk"} for r in runs],
    }
    if any("alive_after" in r for r in runs):
        out["alive_after"] = all(r.get("alive_after", True) for r in runs)
    return out


def by_round(agg: dict[str, Any] | None, value: Any) -> dict[int, float]:
    """`value(run)` of each of a balancer's runs in a scenario, by round number (1-based);
    runs with no figure are left out.  Empty for results written before rounds existed."""
    out = {}
    for r in (agg or {}).get("rounds") or []:
        v = value(r)
        if v is not None:
            out[r["round"]] = v
    return out


def round_ratios(a: dict[str, Any] | None, b: dict[str, Any] | None, value: Any) -> list[float]:
    """a / b of each round both ran in (adjacent runs: the spread of these is the noise left)."""
    va, vb = by_round(a, value), by_round(b, value)
    return [va[i] / vb[i] for i in sorted(va) if i in vb and vb[i]]
