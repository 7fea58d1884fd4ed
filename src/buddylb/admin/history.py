"""The dashboard's memory: a small ring of counter samples (15 minutes) and of events.

Owns what the admin API cannot read from the live objects at one instant: rates over
time and things that happened.  `History.sample(now, ...)` is called every few seconds
by the admin server with the cumulative counters of that moment; rates are differences
between samples, so nothing on the data path changes: the buddy hits per buddy real
group (the buddy map's links) and the re-sticks per context (bursts become events) are
counted by the balancer's decision tally (io/tally.py), whose dicts `follow` shares.

Events: probe transitions and reloads are found by comparing one sample with the last
(probe verdicts, configuration generation); a refused reload is reported by the admin
API's reload handler and by a log handler on the "buddylb" logger (SIGHUP reloads).
Bounded: `SAMPLES` samples, `EVENTS` events; no I/O, no clock (`now` is passed in).
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Iterable

from buddylb.io.tally import Tally

SAMPLE_EVERY_S = 5.0
SAMPLES = 180  # 15 minutes at 5 s
EVENTS = 200
RESTICK_BURST = 5  # re-sticks in one context within one sample interval make an event


class History:
    def __init__(self) -> None:
        self.samples: deque[dict[str, Any]] = deque(maxlen=SAMPLES)
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS)
        self._probes: dict[tuple[str, str, str, str], bool] = {}
        self._generation: int | None = None
        self._last_resticks: dict[str, int] = {}
        self.follow(Tally())

    # -- the data-path counts -----------------------------------------------------------
    def follow(self, tally: Tally) -> None:
        """Read buddy hits and re-sticks from `tally` (the balancer's, io/tally.py) from now
        on: the same dicts, so the data path pays nothing for the dashboard.  Re-sticks
        counted before this call are no burst of the first sample."""
        self.tally = tally
        self.buddy_hits: dict[tuple[str, str, str], int] = tally.buddy_hits  # (context, farm, buddy group) -> n
        self.resticks: dict[str, int] = tally.resticks  # context -> count
        self._last_resticks = dict(tally.resticks)

    def observe(self, event: str, d: Any) -> None:
        """Count one decision into the followed tally (a History used on its own, e.g. in tests)."""
        if event == "decision":
            self.tally.count(d)

    # -- sampling ---------------------------------------------------------------------
    def sample(self, now: float, wall: float, decisions: dict, routes: dict, vip_context: dict[str, str],
               probes: Iterable[Any], generation: int) -> None:
        """Record the cumulative counters of this moment; note probe and reload events."""
        per_ctx: dict[str, dict[str, Any]] = {}
        for (ctx, _farm, outcome), n in decisions.items():
            c = per_ctx.setdefault(ctx, {"decisions": {}, "requests": 0, "connections": 0})
            c["decisions"][outcome] = c["decisions"].get(outcome, 0) + n
        for (is_l4, vip, _farm, _rs), cell in routes.items():
            ctx = vip_context.get(vip)
            if ctx is None:
                continue
            c = per_ctx.setdefault(ctx, {"decisions": {}, "requests": 0, "connections": 0})
            c["connections" if is_l4 else "requests"] += cell[0]
        self.samples.append({"t": now, "wall": wall, "contexts": per_ctx, "buddy_hits": dict(self.buddy_hits)})
        self._probe_events(wall, probes)
        if self._generation is not None and generation != self._generation:
            self.add(wall, "reload", f"configuration generation {generation} in service")
        self._generation = generation
        for ctx, n in self.resticks.items():
            burst = n - self._last_resticks.get(ctx, 0)
            if burst >= RESTICK_BURST:
                self.add(wall, "restick", f"context {ctx}: {burst} clients re-stuck within {SAMPLE_EVERY_S:g} s")
        self._last_resticks = dict(self.resticks)

    def _probe_events(self, wall: float, probes: Iterable[Any]) -> None:
        for t in probes:
            key = (t.context, t.probe, t.farm, t.rserver)
            before = self._probes.get(key)
            if before is not None and before != t.up:
                detail = f" ({t.last_detail})" if getattr(t, "last_detail", None) else ""
                self.add(wall, "probe", f"probe {t.probe}: {t.rserver} in {t.farm} (context {t.context}) "
                                        f"{'UP' if t.up else 'DOWN'}{detail}")
            self._probes[key] = t.up

    def add(self, wall: float, kind: str, text: str) -> None:
        self.events.append({"ts": wall, "kind": kind, "text": text})

    # -- reading ----------------------------------------------------------------------
    def rates(self) -> dict[str, Any]:
        """Per context, per sample interval: requests/s, connections/s, decisions/s by outcome."""
        out: dict[str, Any] = {}
        prev = None
        for s in self.samples:
            if prev is not None:
                dt = max(s["t"] - prev["t"], 1e-6)
                for ctx, c in s["contexts"].items():
                    p = prev["contexts"].get(ctx, {"decisions": {}, "requests": 0, "connections": 0})
                    series = out.setdefault(ctx, {"t": [], "requests": [], "connections": [], "decisions": {}})
                    series["t"].append(round(s["wall"], 1))
                    series["requests"].append(round((c["requests"] - p["requests"]) / dt, 2))
                    series["connections"].append(round((c["connections"] - p["connections"]) / dt, 2))
                    for outcome in set(c["decisions"]) | set(series["decisions"]):
                        values = series["decisions"].setdefault(outcome, [0.0] * (len(series["t"]) - 1))
                        diff = c["decisions"].get(outcome, 0) - p["decisions"].get(outcome, 0)
                        values.append(round(diff / dt, 2))
            prev = s
        return out

    def totals(self) -> dict[str, Any]:
        """Per context, the cumulative counts of the last sample: requests, connections and
        decisions by outcome (what the rates are differences of; summed across workers)."""
        if not self.samples:
            return {}
        return {ctx: {"requests": c["requests"], "connections": c["connections"], "decisions": dict(c["decisions"])}
                for ctx, c in self.samples[-1]["contexts"].items()}

    def buddy_rates(self) -> dict[tuple[str, str, str], float]:
        """Buddy hits per second per (context, farm, group) over the last sample interval."""
        if len(self.samples) < 2:
            return {}
        a, b = self.samples[-2], self.samples[-1]
        dt = max(b["t"] - a["t"], 1e-6)
        return {k: round((n - a["buddy_hits"].get(k, 0)) / dt, 2) for k, n in b["buddy_hits"].items()}


class RefusedReloads(logging.Handler):
    """Turns the server's "reload refused" log lines (SIGHUP reloads too) into events."""

    def __init__(self, history: History, clock: Any) -> None:
        super().__init__(logging.ERROR)
        self.history = history
        self.clock = clock

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("reload refused"):
            self.history.add(self.clock(), "reload-refused", message)
