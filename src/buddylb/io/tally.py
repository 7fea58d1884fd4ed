"""Decision counts kept on the data path and read lazily by the three that report them.

Why: every decision used to call three Python observers in turn (the metrics, the
dashboard history, the cluster decision rate), about 3.5 µs per L7 request.  One object
(compiled: setup.py, tally.pxd) now counts, in one call, everything they read later:

- `decisions`: (context, farm name or "", outcome) -> count: `metrics.Metrics.decisions`
  (buddylb_decisions_total) and `admin.history.History.sample` read this very dict;
- `total`: every counted decision: `store.cluster.DecisionRate` (the heartbeat's rate);
- `buddy_hits`: (context, farm, buddy real group) -> count, and `resticks`: context ->
  count: `admin.history.History` (the buddy map's links, re-stick bursts) reads them.

`count(d)` is the only writer; readers never change these.  It takes a
`core.decide.Decision` (or anything with its outcome, vip, farm and member fields).
`Balancer.decide` counts each reported decision here once, then calls any extra
observers (`Balancer.observers`, empty in the product).
"""
from __future__ import annotations

from typing import Any


class Tally:
    __slots__ = ("decisions", "buddy_hits", "resticks", "total")

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str, str], int] = {}
        self.buddy_hits: dict[tuple[str, str, str], int] = {}
        self.resticks: dict[str, int] = {}
        self.total = 0

    def count(self, d: Any) -> None:
        """One decision, reported (what the three observers each counted of it)."""
        self.total += 1
        outcome = d.outcome
        farm = d.farm
        ctx = d.vip.context
        key = (ctx, farm.name if farm is not None else "", outcome)
        decisions = self.decisions
        decisions[key] = decisions.get(key, 0) + 1
        if outcome == "buddy_hit":
            member = d.member
            if member is not None and member.buddy_group:
                bkey = (ctx, member.farm, member.buddy_group)
                self.buddy_hits[bkey] = self.buddy_hits.get(bkey, 0) + 1
        elif outcome == "restick":
            self.resticks[ctx] = self.resticks.get(ctx, 0) + 1
