"""RedisStore: one sticky view shared by several balancers (issues 7, 15; SPEC §2.1 sticky-store).

Data model (`store.record`): one Redis string per entry, key `{prefix}{scope tag}:{client}`,
value `LAST,RS0,RS1,...`, with a TTL of the scope's timeout counted from the entry's last
activity (refreshed when the entry changes and, batched, when a connection closes).
Open-connection counts stay node-local (README: a TTL can run out under a connection idle
for longer than the timeout; the node then writes its live copy back, see below).

Race-free first decision (SPEC §3 insert-or-get): a new entry is written by a Lua script
that stores ours only if none exists and otherwise returns the existing one; the loser
re-decides on the winner's entry, so both connections end on one rserver.

Latency: the local StickyTable is a cache.  An entry loaded or written less than
`cache_s` ago is used without a round trip (using it does not extend that); a sticky hit
that changes nothing writes nothing; TTL refreshes on close are batched every 100 ms.
The loads and writes asked for in one event-loop pass go as one pipeline (`store.batch`):
a burst of new clients costs one round trip, not one pooled connection each.

Redis is the truth for what it holds, never for what it lacks: a local live entry that
Redis does not have (Redis restarted empty, failed over to a replica that missed the
write, or a TTL ran out under an open connection) is written back with insert-or-get
("read repair"), never deleted.  After a restart is detected every live local entry is
written back (`store.antientropy`, newest copy wins).

Loss of Redis: every operation has a timeout; on error the store turns *degraded*: the
data path serves from the local table alone (no request fails), entries created
meanwhile are remembered, a reconnect loop with backoff pings Redis, and on return the
remembered entries are merged back with insert-or-get (what Redis has wins), then the
restart check runs at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Hashable, Mapping

from redis.exceptions import RedisClusterException, RedisError

from buddylb.core.decide import NEW, STICKY_HIT, Decision
from buddylb.core.snapshot import Scope
from buddylb.core.sticky import StickyTable
from buddylb.store import antientropy, batch, cluster, record
from buddylb.store.connect import connect

log = logging.getLogger("buddylb.store")

_FAILURES = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)  # every way Redis can fail us
FRESH_PRUNE_AT = 50_000  # local-copy validity records kept before expired ones are dropped
CHECK_EVERY_S = 1.0  # restart detection (run_id, marker) and Redis memory figures


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str = "buddylb:", timeout_s: float = 0.05, cache_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self.conn = connect(url, timeout_s)
        self.client = self.conn.client
        self._insert = self.client.register_script(record.INSERT_OR_GET)
        # the decision bracket's commands: one pipeline per loop pass (store.batch)
        self.ops = batch.Direct(self.client, self._insert) if self.conn.kind == "cluster" else \
            batch.Batch(self.client, self._insert)
        self.marker = "{" + prefix + "}marker"  # a hash tag: one slot in a Redis Cluster
        self.fresh: dict[tuple[str, str, Hashable], float] = {}
        self.degraded = False
        self.errors = 0
        self.last_error = ""
        self.degraded_since = 0.0
        self.dirty: dict[tuple[str, str, Hashable], tuple[StickyTable, Scope]] = {}
        self.pending_ttl: dict[tuple[str, str, Hashable], Scope] = {}  # (context, scope, key) -> scope
        self.repairs = 0  # live local entries written back because Redis lacked them
        self.writeback_rate = antientropy.RATE  # entries/s of a write-back pass (sticky-store writeback-rate)
        self.identity = antientropy.Identity()
        self.info: dict[str, Any] = {}
        self.tasks: list[asyncio.Task] = []
        self.reconnecting: asyncio.Task | None = None
        self.passing: asyncio.Task | None = None
        self.on_change: Callable[[bool], None] = lambda degraded: None
        self.tables: Callable[[], Mapping[str, StickyTable]] = dict
        self.clock: Callable[[], float] = clock  # the engine's (Balancer.clock, or `attach`): one time base
        self.node: Callable[[], dict[str, Any]] | None = None
        self.heartbeats = cluster.Heartbeats(self.client, prefix, timeout_s)

    def attach(self, tables: Callable[[], Mapping[str, StickyTable]], clock: Callable[[], float],
               node: Callable[[], dict[str, Any]] | None = None) -> None:
        """Give the store the node's live tables and clock (for the anti-entropy pass) and
        what describes this node (for its heartbeat, `store.cluster`)."""
        self.tables, self.clock, self.node = tables, clock, node

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect before the VIPs accept (SPEC §4); an unreachable Redis starts degraded."""
        try:
            await asyncio.wait_for(self.client.ping(), max(self.timeout_s, 1.0))
            await self._check_identity()
            await self._refresh_info()
        except _FAILURES as exc:
            self._degrade(exc)
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._ttl_flusher()))
        self.tasks.append(loop.create_task(self._checker()))
        if self.node is not None:
            self.tasks.append(loop.create_task(self._heartbeat()))

    async def stop(self) -> None:
        for t in self.tasks + [t for t in (self.reconnecting, self.passing) if t is not None] + \
                list(getattr(self.ops, "running", ())):
            t.cancel()
        try:
            await self.conn.close()
        except _FAILURES:
            pass

    def rkey(self, context: str, scope: Scope, key: Hashable) -> str:
        return record.entry_key(self.prefix, context, scope, key)

    # -- the decision bracket -------------------------------------------------------------
    async def load(self, table: StickyTable, scope: Scope, key: Hashable, now: float) -> None:
        if self.degraded:
            return
        fk = (table.context, scope.name, key)
        until = self.fresh.get(fk)
        if until is not None and until > now:
            return
        rk = self.rkey(table.context, scope, key)
        try:
            value = await asyncio.wait_for(self.ops.get(rk), self.timeout_s)
            if value is None:
                value = await self._repair(table, scope, key, rk, now)
        except _FAILURES as exc:
            self._degrade(exc)
            return
        self._apply(table, scope, key, value, now)
        self.fresh[fk] = now + self.cache_s

    async def _repair(self, table: StickyTable, scope: Scope, key: Hashable, rk: str, now: float) -> str | None:
        """Redis lacks an entry this node holds live: write ours (insert-or-get), keep it.
        Returns what another node stored first, if one did meanwhile."""
        st = table.scopes.get(scope.name)
        e = table.peek(scope.name, key, now) if st is not None else None
        if st is None or e is None:
            return None
        left = st.expires_in(e, now)
        ttl_ms = int((st.timeout if left is None else left) * 1000)
        if ttl_ms <= 0:
            return None
        self.repairs += 1
        return await asyncio.wait_for(self.ops.insert(rk, record.pack(e.last, e.farms), ttl_ms), self.timeout_s)

    def fresh_copy(self, context: str, scope: Scope, key: Hashable, now: float) -> bool:
        """True when a decision on this key needs no load: the local copy is current
        (or Redis is down and the local table is all there is)."""
        return self.degraded or self.fresh.get((context, scope.name, key), 0.0) > now

    def settle(self, d: Decision) -> bool:
        """True when `d` needs nothing written: no entry, or a rule-3 hit that changes
        nothing. While degraded, remembers the entry for the merge-back and says True."""
        if d.entry is None or d.scope is None or d.table is None:
            return True
        if self.degraded:
            self.dirty[(d.table.context, d.scope.name, d.key)] = (d.table, d.scope)
            return True
        return d.outcome == STICKY_HIT and d.rule.startswith("3")

    async def commit(self, d: Decision, now: float, redecide: Callable[[], Decision]) -> Decision:
        if d.entry is None or d.scope is None or d.table is None or d.farm is None or d.member is None:
            return d
        table, scope, key = d.table, d.scope, d.key
        fk = (table.context, scope.name, key)
        if self.degraded:
            self.dirty[fk] = (table, scope)
            return d
        if d.outcome == STICKY_HIT and d.rule.startswith("3"):
            return d  # rule 3 changes nothing: no write, and the copy's validity is NOT extended
        rk = self.rkey(table.context, scope, key)
        ttl_ms = int(scope.timeout_s * 1000)
        value = record.pack(d.entry.last, d.entry.farms)
        try:
            if d.outcome == NEW:
                existing = await asyncio.wait_for(self.ops.insert(rk, value, ttl_ms), self.timeout_s)
                if existing:  # another node (or connection) stored first: follow its entry
                    self._apply(table, scope, key, existing, now)
                    self.fresh[fk] = now + self.cache_s
                    return redecide()
            else:
                await asyncio.wait_for(self.ops.set(rk, value, ttl_ms), self.timeout_s)
        except _FAILURES as exc:
            self._degrade(exc)
            self.dirty[fk] = (table, scope)
            return d
        self.fresh[fk] = now + self.cache_s
        return d

    def closed(self, d: Decision, now: float) -> None:
        """Expiry counts from the last close (SPEC §3): refresh the TTL, batched."""
        if d.scope is not None and d.table is not None and d.key is not None and not self.degraded:
            self.pending_ttl[(d.table.context, d.scope.name, d.key)] = d.scope

    def _apply(self, table: StickyTable, scope: Scope, key: Hashable, value: str | None, now: float) -> None:
        """Make the local copy equal to what Redis holds, through the table's own `adopt`.
        What Redis lacks changes nothing: a local entry is never deleted because Redis lost it."""
        rec = record.unpack(value, scope) if scope.name in table.scopes else None
        if rec is None:
            return
        last, farms = rec
        table.adopt(scope.name, key, farms, last, now)

    # -- degradation and recovery -----------------------------------------------------------
    def _degrade(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self.degraded:
            self.degraded = True
            self.degraded_since = time.time()
            self.fresh.clear()
            log.warning("sticky-store %s unavailable (%s): serving from the local table", self.url, self.last_error)
            self.on_change(True)
        if self.reconnecting is None or self.reconnecting.done():
            self.reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while True:
            await asyncio.sleep(delay)
            try:
                # connections opened before the failure are dead (a restarted server closed
                # them): drop them all, or the first command after recovery fails again
                await self.conn.reset()
                await asyncio.wait_for(self.client.ping(), max(self.timeout_s, 0.5))
                merged = await self._merge_back()
            except _FAILURES as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(delay * 2, 5.0)
                continue
            # no await from here on: a failure right after recovery must find no loop running
            self.reconnecting = None
            self.degraded = False
            log.warning("sticky-store %s is back; merged %d entries made while it was away", self.url, merged)
            self.on_change(False)
            self.tasks.append(asyncio.get_running_loop().create_task(self._check_soon()))
            return

    async def _merge_back(self) -> int:
        """Entries made while degraded go to Redis with insert-or-get: Redis wins a conflict."""
        now = self.clock()
        merged = 0
        for fk, (table, scope) in list(self.dirty.items()):
            key = fk[2]
            entry = table.peek(scope.name, key, now)
            if entry is not None:
                rk = self.rkey(table.context, scope, key)
                existing = await asyncio.wait_for(
                    self._insert(keys=[rk], args=[record.pack(entry.last, entry.farms), int(scope.timeout_s * 1000)]),
                    max(self.timeout_s, 0.5))
                if existing:
                    self._apply(table, scope, key, existing, now)
                merged += 1
            del self.dirty[fk]
        return merged

    # -- restart detection and anti-entropy ---------------------------------------------------
    async def _check_soon(self) -> None:
        try:
            await self._check_identity()
        except _FAILURES as exc:
            self._degrade(exc)

    async def _check_identity(self) -> None:
        """Start a write-back pass when Redis is not the one this node last filled."""
        if self.passing is not None and not self.passing.done():
            return
        run_id, has_marker = await asyncio.wait_for(self.conn.identity(self.marker), max(self.timeout_s, 0.5))
        reason = self.identity.reason(run_id, has_marker)
        if reason is None:
            if self.identity.run_id is None:
                self.identity.run_id = run_id
                if not has_marker:
                    await asyncio.wait_for(self.client.set(self.marker, "1"), max(self.timeout_s, 0.5))
            return
        log.warning("sticky-store %s: %s; writing this node's live entries back", self.url, reason)
        self.identity.last_reason = reason
        self.passing = asyncio.get_running_loop().create_task(self._pass(run_id))

    async def _pass(self, run_id: str) -> None:
        try:
            written, kept = await antientropy.write_back(self.conn, self.prefix, self.tables(), self.clock,
                                                         self.timeout_s, self.writeback_rate)
            await asyncio.wait_for(self.client.set(self.marker, "1"), max(self.timeout_s, 0.5))
        except _FAILURES as exc:
            self._degrade(exc)  # the pass starts again after the reconnect: nothing was confirmed
            return
        ident = self.identity
        ident.run_id, ident.passes, ident.last_pass_at = run_id, ident.passes + 1, time.time()
        ident.written += written
        ident.kept += kept
        log.warning("sticky-store %s: wrote back %d entries (%d already there as recent)", self.url, written, kept)

    async def _checker(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            if self.degraded:
                continue
            try:
                await self._check_identity()
            except _FAILURES as exc:
                self._degrade(exc)
                continue
            ticks += 1
            if ticks % 5 == 0:
                await self._refresh_info()

    # -- the cluster view ------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        assert self.node is not None
        while True:
            if not self.degraded:
                me = self.node()
                try:
                    await asyncio.wait_for(self.heartbeats.publish(me), max(self.timeout_s, 0.5))
                    await asyncio.wait_for(self.heartbeats.read(me), max(self.timeout_s, 0.5))
                except _FAILURES as exc:
                    self._degrade(exc)
            await asyncio.sleep(cluster.HEARTBEAT_S)

    async def cluster(self, me: dict[str, Any]) -> dict[str, Any]:
        """`show cluster`: every node whose heartbeat is in Redis now (SPEC §4)."""
        if not self.degraded:
            try:
                return await asyncio.wait_for(self.heartbeats.read(me), max(self.timeout_s, 0.5))
            except _FAILURES as exc:
                self._degrade(exc)
        doc = cluster.view([dict(me, age_s=0.0)], me["id"])
        doc["warnings"].append(f"sticky store {self.url} unavailable: the other nodes are unknown")
        return doc

    async def _ttl_flusher(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if not self.pending_ttl or self.degraded:
                continue
            self._prune_fresh()
            batch, self.pending_ttl = self.pending_ttl, {}
            pipe = self.client.pipeline(transaction=False)
            for (context, _, key), scope in batch.items():
                pipe.pexpire(self.rkey(context, scope, key), int(scope.timeout_s * 1000))
            try:
                await asyncio.wait_for(pipe.execute(), max(self.timeout_s, 0.5))
            except _FAILURES as exc:
                self._degrade(exc)

    def _prune_fresh(self) -> None:
        """Forget validity records that ran out, so `fresh` stays bounded by recent traffic."""
        if len(self.fresh) > FRESH_PRUNE_AT:
            now = self.clock()
            self.fresh = {k: v for k, v in self.fresh.items() if v > now}

    async def _refresh_info(self) -> None:
        try:
            self.info = await asyncio.wait_for(self.conn.memory(), max(self.timeout_s, 0.5))
        except _FAILURES:
            return

    def status(self) -> dict[str, Any]:
        return {"kind": self.conn.kind, "url": self.url, "prefix": self.prefix, "degraded": self.degraded,
                "errors": self.errors, "last_error": self.last_error or None,
                "pending_merge": len(self.dirty), "repairs": self.repairs,
                "anti_entropy": self.identity.status(), "cluster_nodes": len(self.heartbeats.last["nodes"]),
                "cluster_config_checksums": self.heartbeats.last["config_checksums"], **self.info}
