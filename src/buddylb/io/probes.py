"""Health probes on the wire: one task per (probe, farm, rserver) target (SPEC §2.1).

Only the check itself lives here (a TCP connect, or an HTTP request and its status
line); the verdict — faildetect / passdetect counting — is `core.health.ProbeTarget`'s.
State changes are logged and written into RuntimeState, which the engine reads.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from buddylb.config.model import Probe
from buddylb.core.health import ProbeTarget
from buddylb.core.snapshot import Snapshot

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.probe")


def build_targets(snap: Snapshot, previous: list[ProbeTarget]) -> list[ProbeTarget]:
    """Targets for `snap`; a target that already existed keeps its verdict and counters."""
    old = {(t.context, t.probe, t.farm, t.rserver, t.address, t.port): t for t in previous}
    targets = []
    for ctx in snap.contexts.values():
        for farm in ctx.farms.values():
            for pname in farm.probes:
                probe: Probe = ctx.probes[pname]  # type: ignore[assignment]
                for m in farm.members:
                    port = probe.port or m.port or _vip_port(snap, ctx.name, farm.name) or 80
                    key = (ctx.name, pname, farm.name, m.rserver, m.address, port)
                    t = old.get(key) or ProbeTarget(
                        ctx.name, pname, farm.name, m.rserver, m.address, port, probe.faildetect,
                        probe.passdetect_count, probe.interval_s, probe.passdetect_interval_s,
                    )
                    targets.append(t)
    return targets


def _vip_port(snap: Snapshot, context: str, farm: str) -> int | None:
    for vip in snap.vips.values():
        if vip.context == context and any(c.farm == farm or (c.sticky and snap.contexts[context].stickies[c.sticky].farm == farm)
                                          for c in vip.policy.classes):
            return vip.port
    return None


async def check(probe: Probe, address: str, port: int) -> tuple[bool, str]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), probe.open_timeout_s)
    except (OSError, asyncio.TimeoutError) as exc:
        return False, f"connect: {exc or 'timeout'}"
    try:
        if probe.kind == "tcp":
            return True, "connected"
        host = f"[{address}]" if ":" in address else address
        extra = "".join(f"{h.name}: {h.value}\r\n" for h in probe.headers)
        writer.write(f"{probe.method} {probe.url} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), max(probe.open_timeout_s, 2.0))
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return False, "no HTTP status line"
        status = int(parts[1])
        ok = probe.expect_lo <= status <= probe.expect_hi
        return ok, f"status {status}"
    except (OSError, asyncio.TimeoutError) as exc:
        return False, f"http: {exc or 'timeout'}"
    finally:
        writer.close()


class Prober:
    def __init__(self, balancer: "Balancer") -> None:
        self.balancer = balancer
        self.tasks: dict[int, asyncio.Task] = {}

    def sync(self) -> None:
        """(Re)start one task per target of the current snapshot."""
        b = self.balancer
        targets = build_targets(b.snapshot, b.probe_targets)
        keep = {id(t) for t in targets}
        for tid, task in list(self.tasks.items()):
            if tid not in keep:
                task.cancel()
                del self.tasks[tid]
        live = {t.member_key for t in targets}
        for key in b.state.probe_down_keys():
            if key not in live:
                b.state.set_probe(key, True)  # no probe any more: available again
        b.probe_targets = targets
        for t in targets:
            if id(t) not in self.tasks:
                self.tasks[id(t)] = asyncio.get_running_loop().create_task(self._run(t))

    async def _run(self, t: ProbeTarget) -> None:
        while True:
            probe: Probe = self.balancer.snapshot.contexts[t.context].probes[t.probe]  # type: ignore[assignment]
            ok, detail = await check(probe, t.address, t.port)
            change = t.record(ok, detail)
            if change is not None:
                self.balancer.state.set_probe(t.member_key, change)
                log.warning("probe %s: rserver %s in serverfarm %s (%s:%d) is now %s (%s)",
                            t.probe, t.rserver, t.farm, t.address, t.port, "UP" if change else "DOWN", detail)
                if not change:
                    self.balancer.purge(t.context, t.farm, t.rserver)
            await asyncio.sleep(t.next_interval())

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
