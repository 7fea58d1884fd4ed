"""Decision counts kept on the data path and read lazily by the three that report them.

Why: every decision used to call three Python observers in turn (the metrics, the
dashboard history, the cluster decision rate), about 3.5 µs per L7 request.  One object
(compiled: setup.py, tally.pxd) now counts, in one call, everything they read later:

- `decisions`: (context, farm name or "", outcome) -> count: `metrics.Metrics.decisions`
  (buddylb_decisions_total) and `admin.history.History.sample` read this very dict;
- `total`: every counted decision: `store.cluster.DecisionRate` (the heartbeat's rate);
- `buddy_hits`: (context, farm, buddy real group) -> count, and `resticks`: context ->
  count: `admin.history.History` (the buddy map's links, re-stick bursts) reads them.

`count(d)` is the only writer of these; readers never change them.  It takes a
`core.decide.Decision` (or anything with its outcome, vip, farm and member fields).
`counted_decide` (the body of `Balancer.decide`, which the data paths call directly)
counts each reported decision here once, then calls any extra observers
(`Balancer.observers`, empty in the product).

Finished flows (io/record.py's FlowRecord, one per L4 connection or L7 request) are
counted the same way once `metrics.Metrics` taps them (`tap`): `record(rec)` adds to
`routes` ((is L4, vip, farm, rserver) -> [count, bytes in, bytes out]) and `responses`
((vip, status class) -> count), then hands the record to the access log, unless that
log is off (`enabled` false): then no call at all.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from buddylb.core.decide import Decision, Flow, decide
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.io.record import L4_MODES


def counted_decide(b: Any, vip: Vip, flow: Flow, snap: Snapshot, requeue: bool = False) -> Decision:
    """`Balancer.decide`'s body (`b` is the io.runtime.Balancer), compiled (the data paths call it directly): decide on
    `snap`, then count the decision in the balancer's tally and tell any extra observers.
    `requeue`: a queued client asks again; only a decision that found a server is
    reported then, so one waiting client is one `no_server`, not one per poll."""
    flow.wall = time.time()
    d = decide(snap, b.state, b.tables, vip, flow, b.clock(), b.secret, requeue)
    if not (requeue and d.member is None):
        tally = b.tally
        tally.count(d)
        observers = b.observers
        if observers:
            for observe in observers:
                observe("decision", d)
    return d


class Tally:
    __slots__ = ("decisions", "buddy_hits", "resticks", "total", "routes", "responses", "sink")

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str, str], int] = {}
        self.buddy_hits: dict[tuple[str, str, str], int] = {}
        self.resticks: dict[str, int] = {}
        self.total = 0
        self.routes: dict[tuple[bool, str, str, str], list[int]] = {}
        self.responses: dict[tuple[str, int], int] = {}
        self.sink: Callable[[Any], None] | None = None  # the access log behind `record`; None: off

    def count(self, d: Any) -> None:
        """One decision, reported (what the three observers each counted of it)."""
        self.total += 1
        if type(d) is Decision:  # decide()'s (compiled: C reads of its fields)
            cd = d
            outcome, farm, vip, member = cd.outcome, cd.farm, cd.vip, cd.member
        else:  # anything with those fields (admin.history's own counting, tests)
            outcome, farm, vip, member = d.outcome, d.farm, d.vip, d.member
        ctx = vip.context
        key = (ctx, farm.name if farm is not None else "", outcome)
        decisions = self.decisions
        decisions[key] = decisions.get(key, 0) + 1
        if outcome == "buddy_hit":
            if member is not None and member.buddy_group:
                bkey = (ctx, member.farm, member.buddy_group)
                self.buddy_hits[bkey] = self.buddy_hits.get(bkey, 0) + 1
        elif outcome == "restick":
            self.resticks[ctx] = self.resticks.get(ctx, 0) + 1

    def tap(self, access_log: Callable[[Any], None]) -> Callable[[Any], None]:
        """Count every record from now on, then pass it to `access_log`: returns what the
        data path must call instead of `access_log` (Balancer.access_log)."""
        record = self.record
        if access_log != record:  # a second Metrics on this balancer: the tap is in place already
            self.sink = None if getattr(access_log, "enabled", True) is False else access_log
        return record

    def record(self, rec: Any) -> None:
        """Count one flow record (a finished connection or request), then log it."""
        vip = rec.vip
        is_l4 = rec.mode in L4_MODES
        key = (is_l4, vip, rec.farm or "", rec.rserver or "")
        routes = self.routes
        cell = routes.get(key)
        if cell is None:
            cell = routes[key] = [0, 0, 0]
        cell[0] += 1
        cell[1] += rec.bytes_in
        cell[2] += rec.bytes_out
        status = rec.status
        if not is_l4 and status.__class__ is int and 100 <= status < 600:
            rkey = (vip, status // 100)
            self.responses[rkey] = self.responses.get(rkey, 0) + 1
        sink = self.sink
        if sink is not None:
            sink(rec)
