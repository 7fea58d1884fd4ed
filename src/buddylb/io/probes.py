"""Health probes: one task per (probe, farm, rserver) target (SPEC §2.1).

The targets of a farm's rserver are the farm's probes and the probes under its
`rserver host` (which apply in every farm, as on the ACE).  The check itself is
`io.probe_checks`'; the verdict of one target (faildetect / passdetect) is
`core.health.ProbeTarget`'s, and a membership is failed while ANY of its targets is
(`core.health.member_up`).  Changes are logged and written into RuntimeState, which
the engine reads.  A check that could not run for a local reason changes nothing.

Each target's last `HISTORY` results (wall time, outcome, detail, latency) are kept in
`Prober.history` for `show probe` and the dashboard (issue 14); bounded per target, and
dropped with the target when a reload removes it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buddylb.config.model import Probe
from buddylb.core.health import ProbeTarget, member_up
from buddylb.io.probe_checks import Connect, check
from buddylb.core.snapshot import Snapshot

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.probe")
RAMP_FLOOR = 0.05  # slowstart: the smallest share of its weight a recovered rserver counts with
HISTORY = 20  # results kept per probe target

TargetKey = tuple[str, str, str, str]  # (context, probe, serverfarm, rserver)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One check as `show probe` reports it: `result` is success, failure or "not run"."""

    ts: float  # wall clock
    result: str
    detail: str
    latency_ms: float | None  # how long the check took; None when it could not run here

    def as_dict(self) -> dict[str, Any]:
        return {"ts": round(self.ts, 3), "result": self.result, "detail": self.detail, "latency_ms": self.latency_ms}


def target_key(t: ProbeTarget) -> TargetKey:
    return (t.context, t.probe, t.farm, t.rserver)


def build_targets(snap: Snapshot, previous: list[ProbeTarget]) -> list[ProbeTarget]:
    """Targets for `snap`; a target that already existed keeps its verdict and counters."""
    old = {(t.context, t.probe, t.farm, t.rserver, t.address, t.port, t.send_proxy): t for t in previous}
    targets = []
    for ctx in snap.contexts.values():
        hosts = snap.config.contexts[ctx.name].rservers if ctx.name in snap.config.contexts else {}
        for farm in ctx.farms.values():
            for m in farm.members:
                host = hosts.get(m.rserver)
                names = list(dict.fromkeys([*farm.probes, *(r.name for r in (host.probes if host else []))]))
                for pname in names:
                    probe: Probe = ctx.probes[pname]  # type: ignore[assignment]
                    port = probe.port or m.port or _vip_port(snap, ctx.name, farm.name) or 80
                    # as HAProxy: a send-proxy farm's checks send the header too, unless the
                    # probe names its own port (HAProxy's `port`; its check-send-proxy is separate)
                    proxy = farm.send_proxy if probe.port is None else 0
                    key = (ctx.name, pname, farm.name, m.rserver, m.address, port, proxy)
                    t = old.get(key) or ProbeTarget(
                        ctx.name, pname, farm.name, m.rserver, m.address, port, probe.faildetect,
                        probe.passdetect_count, probe.interval_s, probe.passdetect_interval_s, send_proxy=proxy,
                    )
                    targets.append(t)
    return targets


def _vip_port(snap: Snapshot, context: str, farm: str) -> int | None:
    for vip in snap.vips.values():
        if vip.context == context and any(c.farm == farm or (c.sticky and snap.contexts[context].stickies[c.sticky].farm == farm)
                                          for c in vip.policy.classes):
            return vip.port
    return None


class Prober:
    def __init__(self, balancer: "Balancer", connect: Connect = asyncio.open_connection) -> None:
        self.balancer = balancer
        self.connect = connect  # injectable: tests make local failures happen
        self.tasks: dict[int, asyncio.Task] = {}
        self.by_member: dict[tuple[str, str, str], list[ProbeTarget]] = {}
        self.history: dict[TargetKey, deque[ProbeResult]] = {}

    def results(self, t: ProbeTarget) -> list[ProbeResult]:
        """The target's last results, oldest first."""
        return list(self.history.get(target_key(t), ()))

    def sync(self) -> None:
        """(Re)start one task per target of the current snapshot."""
        b = self.balancer
        targets = build_targets(b.snapshot, b.probe_targets)
        keep = {id(t) for t in targets}
        for tid, task in list(self.tasks.items()):
            if tid not in keep:
                task.cancel()
                del self.tasks[tid]
        self.by_member = {}
        for t in targets:
            self.by_member.setdefault(t.member_key, []).append(t)
        for key in b.state.probe_down_keys():
            group = self.by_member.get(key)
            if group is None or member_up(group):
                b.state.set_probe(key, True)  # no failed probe any more: available again
        for key, group in self.by_member.items():
            if not member_up(group):
                b.state.set_probe(key, False)
        b.probe_targets = targets
        live = {target_key(t) for t in targets}
        for gone in set(self.history) - live:
            del self.history[gone]
        for t in targets:
            if id(t) not in self.tasks:
                self.tasks[id(t)] = asyncio.get_running_loop().create_task(self._run(t))

    async def _run(self, t: ProbeTarget) -> None:
        while True:
            probe: Probe = self.balancer.snapshot.contexts[t.context].probes[t.probe]  # type: ignore[assignment]
            start = time.monotonic()
            result = await check(probe, t.address, t.port, self.connect, t.send_proxy)
            latency = round((time.monotonic() - start) * 1000, 2)
            if result.local:
                t.record_local(result.detail)
                _log_local(t, result.detail)
            else:
                self._judge(t, t.record(result.ok, result.detail), result.detail)
            ring = self.history.get(target_key(t))
            if ring is None:
                ring = self.history[target_key(t)] = deque(maxlen=HISTORY)
            ring.append(ProbeResult(time.time(), t.last_result, t.last_detail, None if result.local else latency))
            await asyncio.sleep(t.next_interval())

    def _judge(self, t: ProbeTarget, change: bool | None, detail: str) -> None:
        if change is None:
            return
        log.warning("probe %s: rserver %s in serverfarm %s (%s:%d) is now %s (%s)",
                    t.probe, t.rserver, t.farm, t.address, t.port, "UP" if change else "DOWN", detail)
        was_up = not self.balancer.state.probe_failed(t.member_key)
        up = member_up(self.by_member.get(t.member_key, [t]))
        self.balancer.state.set_probe(t.member_key, up)
        if was_up and not up:
            self.balancer.purge(t.context, t.farm, t.rserver)
        if up and not was_up:
            farm = self.balancer.snapshot.contexts[t.context].farms.get(t.farm)
            if farm is not None and farm.predictor.kind == "leastconns" and farm.predictor.slowstart_s > 0:
                self._ramp(t.member_key, farm.predictor.slowstart_s)

    def _ramp(self, key: tuple[str, str, str], slowstart_s: float) -> None:
        """ACE slowstart: the recovered rserver's share of its weight grows from RAMP_FLOOR
        to 1 over `slowstart_s` (core.predictors.leastconns reads `MemberCell.ramp`)."""
        cell = self.balancer.state.cells.get(key)
        if cell is None:
            return
        loop = asyncio.get_running_loop()
        start, step = loop.time(), max(slowstart_s / 20, 0.05)

        def tick() -> None:
            done = (loop.time() - start) / slowstart_s
            cell.ramp = 1.0 if done >= 1.0 else max(RAMP_FLOOR, done)
            if cell.ramp < 1.0:
                loop.call_later(step, tick)

        cell.ramp = RAMP_FLOOR
        loop.call_later(step, tick)

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()


_local_logged: dict[tuple[str, str, str, str], float] = {}


def _log_local(t: ProbeTarget, detail: str) -> None:
    """Once a minute per target: a local shortage must be seen, not flood the log."""
    now = time.monotonic()
    key = (t.context, t.probe, t.farm, t.rserver)
    if now - _local_logged.get(key, -60.0) >= 60.0:
        _local_logged[key] = now
        log.error("probe %s for rserver %s in serverfarm %s %s; the rserver keeps its state", t.probe, t.rserver,
                  t.farm, detail)
