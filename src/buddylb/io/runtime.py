"""Balancer: the live objects one `buddylb run` shares between its adapters.

It holds the current Snapshot (swapped by one assignment on reload), the RuntimeState,
the sticky tables, the cookie secret, the probe targets, the access log and metrics.
Flows read `balancer.snapshot` once when they start and keep that snapshot (Envoy);
nothing here awaits.  `reload()` is the only writer of `snapshot` and `tables`.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from pathlib import Path
from typing import Callable

from buddylb.config.model import Config
from buddylb.config.parser import load_config
from buddylb.core.acl import AclCounters
from buddylb.core.inband import InbandTracker
from buddylb.core.compile import compile_config
from buddylb.core.decide import Decision, Flow, connection_closed
from buddylb.core.health import ProbeTarget
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.core.state import RuntimeState
from buddylb.core.store import MemoryStore, StickyStore, locate
from buddylb.core.sticky import StickyTable
from buddylb.errors import ConfigError
from buddylb.io.descriptors import AcceptState
from buddylb.io.pool import Pool
from buddylb.io.record import FlowRecord
from buddylb.io.retire import Retirer, share_cpu
from buddylb.io.tally import Tally, counted_decide

log = logging.getLogger("buddylb")


def load_secret(path: Path | None) -> bytes:
    """The per-install cookie secret: read from `path`, created there (0600) if missing."""
    if path is None:
        return os.urandom(32)
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:64]
    except FileNotFoundError:
        pass
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


def settle_heap() -> None:
    """Keep the garbage collector from re-scanning the configuration (issue 13 item 6).

    A 20k-member snapshot is ~1M objects; every full collection walked them all, holding
    the event loop ~70 ms. Objects alive now (the new snapshot above all) move to the
    permanent generation; what the previous call froze goes back to the collected heap
    first, so a cycle that became garbage since is collected after the next reload at
    the latest (a compiled snapshot has no cycles: refcounting frees it)."""
    gc.unfreeze()
    gc.freeze()


class Balancer:
    def __init__(self, config_path: Path, secret: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.config_path = config_path
        self.secret = secret
        self.clock = clock
        self.state = RuntimeState()
        config = load_config(config_path)
        self.snapshot: Snapshot = compile_config(config)
        self.tables: dict[str, StickyTable] = {
            c.name: StickyTable.for_context(c) for c in self.snapshot.contexts.values()
        }
        self.probe_targets: list[ProbeTarget] = []
        self.access_log: Callable[[FlowRecord], None] = lambda record: None  # app/metrics install theirs
        # decision counts for the metrics, the dashboard and the cluster rate, read lazily (io/tally.py)
        self.tally = Tally()
        self.observers: list[Callable[[str, Decision], None]] = []  # extra observers (none in the product)
        self.store: StickyStore = MemoryStore()
        self.reloads = 0
        # open flows of farms with `fail-action purge`, by member key, closed on probe failure
        self.pool = Pool()  # L7 server-side keep-alive connections
        self.flows: set = set()  # every open client connection, for drain and stop
        self.h2_clients: set = set()  # HTTP/2 connections: told to GOAWAY on reload and stop (io/h2)
        self.purgeable: dict[tuple[str, str, str], set] = {}
        self.session_vips: dict = {}  # VIP (address, port) -> io.l4's facts of the VIP in force (_vip_facts)
        self.wheel = None  # io.wheel.Wheel of the running loop: every client connection's deadline
        self.queued: dict[str, list] = {}  # context -> futures of flows in the rule-6 queue
        self.warnings = list(config.warnings)
        self.accept = AcceptState()  # the descriptor budget's accept state (io/listeners.py)
        self.reload_lock = asyncio.Lock()  # one reload at a time: an older file never commits last
        self.retirer = Retirer()  # frees replaced snapshots in a worker thread (io/retire.py)
        settle_heap()
        self.acl_counters = AclCounters()  # access-list hits and denials (SPEC §2.4)
        self.proxy_refused: dict[tuple[str, str, str], int] = {}  # (context, VIP, reason) -> refused (io.proxied)
        self.inband = InbandTracker()  # `inband-health check` failure counts (core.inband)

    @property
    def config(self) -> Config:
        return self.snapshot.config

    # -- the decision adapter ---------------------------------------------------------
    def decide(self, vip: Vip, flow: Flow, snap: Snapshot | None = None, requeue: bool = False) -> Decision:
        """Decide, count in `tally`, tell `observers` (io.tally.counted_decide, which the
        data paths call directly).  `requeue`: a queued client asks again; only a
        decision that found a server is reported then, so one waiting client is one
        `no_server`, not one per poll."""
        return counted_decide(self, vip, flow, snap or self.snapshot, requeue)

    def decide_now(self, vip: Vip, flow: Flow, snap: Snapshot | None = None) -> tuple[Decision | None, bool]:
        """With a shared store, decide without awaiting when the local copy is current.

        Returns (None, False) when the entry must be loaded first (then `decide_shared`),
        else (decision, must_publish): most requests of a busy client change nothing and
        cost neither a task nor a round trip; a decision that changed the entry is
        published with `publish` (the same decision: nothing is counted twice)."""
        snap = snap or self.snapshot
        where = locate(snap, vip, flow, self.secret)
        if where is not None and not self.store.fresh_copy(vip.context, where[0], where[1], self.clock()):
            return None, False
        d = self.decide(vip, flow, snap)
        return d, not self.store.settle(d)

    async def publish(self, d: Decision, vip: Vip, flow: Flow, snap: Snapshot | None = None) -> Decision:
        """Write `d`'s entry to the shared store; a lost first-decision race re-decides."""
        snap = snap or self.snapshot

        def redecide() -> Decision:
            connection_closed(self.state, d, self.clock())
            return self.decide(vip, flow, snap)

        return await self.store.commit(d, self.clock(), redecide)

    async def decide_shared(self, vip: Vip, flow: Flow, snap: Snapshot | None = None) -> Decision:
        """decide() bracketed by the shared store: load the entry, decide, publish."""
        snap = snap or self.snapshot
        where = locate(snap, vip, flow, self.secret)
        if where is not None:
            table = self.tables.get(vip.context)
            if table is not None:
                await self.store.load(table, where[0], where[1], self.clock())
        return await self.publish(self.decide(vip, flow, snap), vip, flow, snap)

    @property
    def store_status(self) -> dict:
        return self.store.status()

    def closed(self, d: Decision) -> None:
        """A decision's connection or request ended (io.flow.Lease.release calls it once)."""
        now = self.clock()
        if self.store.shared:
            self.store.closed(d, now)
        connection_closed(self.state, d, now)
        if self.queued:
            self.wake(d.vip.context)

    # -- the rule-6 queue (io.flow.queue): woken by releases, never polled -------------
    def waiter(self, context: str) -> "asyncio.Future[None]":
        fut = asyncio.get_running_loop().create_future()
        self.queued.setdefault(context, []).append(fut)
        return fut

    def unwait(self, context: str, fut: "asyncio.Future[None]") -> None:
        waiting = self.queued.get(context)
        if waiting is not None:
            if fut in waiting:
                waiting.remove(fut)
            if not waiting:
                del self.queued[context]

    def inband_failed(self, d: Decision) -> None:
        """A connect to `d`'s rserver failed: count it for `inband-health check`; at the
        threshold log it and (`remove`) take the rserver out of the farm until
        `resume-service` has passed (ACE; 0: until the next reload)."""
        farm, m = d.farm, d.member
        if farm is None or m is None or farm.inband is None:
            return
        spec = farm.inband
        verdict = self.inband.failed(m.key, spec, self.clock())
        if verdict is None:
            return
        log.warning("inband-health: rserver %s in serverfarm %s failed %d connection(s) within %d ms%s",
                    m.rserver, farm.name, spec.threshold, round(spec.reset_s * 1000),
                    "; removed from the farm" if verdict == "remove" else "")
        if verdict == "remove":
            self.state.set_probe(m.key, False)
            if spec.resume_s > 0:
                asyncio.get_running_loop().call_later(spec.resume_s, self._inband_resume, m.key)

    def _inband_resume(self, key: tuple[str, str, str]) -> None:
        """resume-service passed: the rserver is back unless one of its probes says no."""
        self.state.set_probe(key, all(t.up for t in self.probe_targets if t.member_key == key))
        log.warning("inband-health: rserver %s in serverfarm %s resumes service", key[2], key[1])

    def wake(self, context: str) -> None:
        """A slot may have freed in `context`: every queued flow there decides again."""
        for fut in self.queued.get(context, ()):
            if not fut.done():
                fut.set_result(None)

    def sweep(self, budget: int = 512) -> int:
        now = self.clock()
        return sum(t.sweep(now, budget) for t in self.tables.values())

    def track(self, d: Decision, flow_obj: object) -> None:
        if d.farm is not None and d.farm.fail_action_purge and d.member is not None:
            self.purgeable.setdefault(d.member.key, set()).add(flow_obj)

    def untrack(self, d: Decision, flow_obj: object) -> None:
        if d.member is not None:
            flows = self.purgeable.get(d.member.key)
            if flows is not None:
                flows.discard(flow_obj)

    def purge(self, context: str, farm: str, rserver: str) -> int:
        """`fail-action purge`: close the open connections of an rserver whose probe failed."""
        flows = self.purgeable.pop((context, farm, rserver), set())
        for f in flows:
            f.abort()  # type: ignore[attr-defined]
        if flows:
            log.warning("fail-action purge: closed %d connection(s) of %s in %s", len(flows), rserver, farm)
        return len(flows)

    # -- reload -----------------------------------------------------------------------
    def prepare(self) -> tuple[Snapshot, Config]:
        """Re-read, validate and compile the file; raises ConfigError. Changes nothing."""
        config = load_config(self.config_path)
        return compile_config(config), config

    async def prepare_off_loop(self) -> tuple[Snapshot, Config]:
        """`prepare()` in a worker thread, so the event loop keeps serving meanwhile.

        Reading and compiling a 20k-member farm takes about a second of CPU; on the loop
        it stalled every request for that long (issue 13 item 6). The thread builds a new
        Snapshot that nothing else sees; the caller swaps it in with `commit` on the loop,
        only once it is complete. The GIL still makes the thread share the CPU with the
        loop, but the loop gets it back at every switch interval (5 ms), not after the
        whole compilation. Two process-wide settings help it do so, restored afterwards:
        the garbage collector is off (a full collection among a million new objects holds
        the GIL for up to a second: measured), and the switch interval is 1 ms (share_cpu)."""
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            with share_cpu():
                return await asyncio.get_running_loop().run_in_executor(None, self.prepare)
        finally:
            # the new snapshot's objects sit in the youngest generation: freeze them before
            # the collector is back, or its next young collection walks them on the loop
            gc.freeze()
            if gc_was_on:
                gc.enable()

    def commit(self, snap: Snapshot, config: Config) -> None:
        """Swap in `snap`, carrying the sticky database over (SPEC §5)."""
        tables = {}
        for name, ctx in snap.contexts.items():
            old = self.tables.get(name)
            tables[name] = old.carry_over(ctx) if old is not None else StickyTable.for_context(ctx)
        # one assignment each: flows already running keep the snapshot they hold; the old
        # one is freed in a worker thread once they let go (on the loop: 40-60 ms at 20k)
        self.retirer.retire(self.snapshot)
        self.snapshot, self.tables = snap, tables
        self.warnings = list(config.warnings)
        settle_heap()
        self.reloads += 1
        log.info("reload: configuration generation %d in service", snap.generation)
