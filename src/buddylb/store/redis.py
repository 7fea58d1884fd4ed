"""RedisStore: one sticky view shared by several balancers (issue 7, SPEC §2.1 sticky-store).

Data model: one Redis hash per entry, `{prefix}{context}:{scope}:{key}` (the prefix names
the cluster, so several clusters and all contexts share one Redis without collisions),
fields `last` (the last serverfarm) and `r:<farm>` (the rserver remembered per farm),
with a TTL of the scope's timeout, refreshed when an entry changes or a connection
closes.  Open-connection counts stay node-local (see README: a TTL can run out under a
connection idle for longer than the timeout; the next decision re-creates the entry).

Race-free first decision (SPEC §3 insert-or-get): a new entry is written by a Lua script
that stores ours only if none exists and otherwise returns the existing one; the loser
re-decides on the winner's entry, so both connections end on one rserver.

Latency: the local StickyTable is a cache.  An entry loaded or written less than
`cache_s` ago is used without a round trip (using it does not extend that); a sticky hit
that changes nothing writes nothing; TTL refreshes on close are batched every 100 ms.  Within `cache_s` a node may
act on a copy another node has just changed (see README "Redis store" for why this
cannot split a client across buddy groups unless its rserver changed in that window).

Loss of Redis: every operation has a timeout; on error the store turns *degraded*: the
data path serves from the local table alone (no request fails), entries created
meanwhile are remembered, a reconnect loop with backoff pings Redis, and on return the
remembered entries are merged back with insert-or-get (what Redis has wins).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Hashable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from buddylb.core.decide import NEW, STICKY_HIT, Decision
from buddylb.core.keys import format_key
from buddylb.core.snapshot import Scope
from buddylb.core.sticky import StickyTable

log = logging.getLogger("buddylb.store")

INSERT_OR_GET = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'r:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {}
"""
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
MAX_CONNECTIONS = 16
FRESH_PRUNE_AT = 50_000  # local-copy validity records kept before expired ones are dropped


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str = "buddylb:", timeout_s: float = 0.05, cache_s: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        # a bounded pool: a burst of new clients queues for a connection instead of opening one each
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=timeout_s,
                                                        socket_timeout=timeout_s,
                                                        socket_connect_timeout=timeout_s, decode_responses=True)
        self.client = aioredis.Redis(connection_pool=pool)
        self._insert = self.client.register_script(INSERT_OR_GET)
        self.fresh: dict[tuple[str, str, Hashable], float] = {}
        self.degraded = False
        self.errors = 0
        self.last_error = ""
        self.degraded_since = 0.0
        self.dirty: dict[tuple[str, str, Hashable], tuple[StickyTable, Scope]] = {}
        self.pending_ttl: dict[tuple[str, str, Hashable], Scope] = {}  # (context, scope, key) -> scope
        self.info: dict[str, Any] = {}
        self.tasks: list[asyncio.Task] = []
        self.reconnecting: asyncio.Task | None = None
        self.on_change: Callable[[bool], None] = lambda degraded: None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect before the VIPs accept (SPEC §4); an unreachable Redis starts degraded."""
        try:
            await asyncio.wait_for(self.client.ping(), max(self.timeout_s, 1.0))
            await self._refresh_info()
        except _FAILURES as exc:
            self._degrade(exc)
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._ttl_flusher()))
        self.tasks.append(loop.create_task(self._info_poller()))

    async def stop(self) -> None:
        for t in self.tasks + ([self.reconnecting] if self.reconnecting else []):
            t.cancel()
        try:
            await self.client.aclose()
        except _FAILURES:
            pass

    def rkey(self, context: str, scope: Scope, key: Hashable) -> str:
        return f"{self.prefix}{context}:{scope.name}:{format_key(scope, key)}"

    # -- the decision bracket -------------------------------------------------------------
    async def load(self, table: StickyTable, scope: Scope, key: Hashable, now: float) -> None:
        if self.degraded:
            return
        fk = (table.context, scope.name, key)
        until = self.fresh.get(fk)
        if until is not None and until > now:
            return
        try:
            fields = await asyncio.wait_for(self.client.hgetall(self.rkey(table.context, scope, key)), self.timeout_s)
        except _FAILURES as exc:
            self._degrade(exc)
            return
        self._apply(table, scope, key, fields, now)
        self.fresh[fk] = now + self.cache_s

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
        try:
            if d.outcome == NEW:
                existing = await asyncio.wait_for(
                    self._insert(keys=[rk], args=[d.farm.name, d.member.rserver, ttl_ms]), self.timeout_s)
                if existing:  # another node (or connection) stored first: follow its entry
                    fields = dict(zip(existing[::2], existing[1::2]))
                    self._apply(table, scope, key, fields, now)
                    self.fresh[fk] = now + self.cache_s
                    return redecide()
            else:
                pipe = self.client.pipeline(transaction=False)
                pipe.hset(rk, mapping={"last": d.farm.name, f"r:{d.farm.name}": d.member.rserver})
                pipe.pexpire(rk, ttl_ms)
                await asyncio.wait_for(pipe.execute(), self.timeout_s)
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

    def _apply(self, table: StickyTable, scope: Scope, key: Hashable, fields: dict, now: float) -> None:
        """Make the local copy equal to what Redis holds (Redis is the truth)."""
        st = table.scopes.get(scope.name)
        if st is None:
            return
        entry = st.entries.get(key)
        last = fields.get("last") if fields else None
        if last is None or last not in scope.farm_index:
            if entry is not None and entry.open == 0:
                table.clear(lambda s, k, e: s is st and k == key)
            return
        farms = tuple(fields.get(f"r:{f}") for f in scope.farms)
        idx = scope.farm_index[last]
        if farms[idx] is None:
            return
        if entry is None:
            entry = table.insert(scope.name, key, idx, farms[idx], now)
            if entry is None:
                return
        entry.farms = st.intern(farms)
        entry.last = idx
        entry.stamp = now

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
                await self.client.connection_pool.disconnect()
                await asyncio.wait_for(self.client.ping(), max(self.timeout_s, 0.5))
                await self._merge_back()
            except _FAILURES as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(delay * 2, 5.0)
                continue
            # no await from here on: a failure right after recovery must find no loop running
            self.reconnecting = None
            self.degraded = False
            log.warning("sticky-store %s is back; merged %s", self.url, "local entries")
            self.on_change(False)
            asyncio.get_running_loop().create_task(self._refresh_info())
            return

    async def _merge_back(self) -> None:
        """Entries made while degraded go to Redis with insert-or-get: Redis wins a conflict."""
        now = time.monotonic()
        for fk, (table, scope) in list(self.dirty.items()):
            key = fk[2]
            st = table.scopes.get(scope.name)
            entry = st.entries.get(key) if st is not None else None
            if entry is not None:
                rk = self.rkey(table.context, scope, key)
                farm = scope.farms[entry.last]
                existing = await asyncio.wait_for(
                    self._insert(keys=[rk], args=[farm, entry.farms[entry.last], int(scope.timeout_s * 1000)]),
                    max(self.timeout_s, 0.5))
                if existing:
                    self._apply(table, scope, key, dict(zip(existing[::2], existing[1::2])), now)
            del self.dirty[fk]

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
            now = time.monotonic()
            self.fresh = {k: v for k, v in self.fresh.items() if v > now}

    async def _info_poller(self) -> None:
        while True:
            await asyncio.sleep(5)
            if not self.degraded:
                await self._refresh_info()

    async def _refresh_info(self) -> None:
        try:
            mem = await asyncio.wait_for(self.client.info("memory"), max(self.timeout_s, 0.5))
            keys = await asyncio.wait_for(self.client.dbsize(), max(self.timeout_s, 0.5))
        except _FAILURES:
            return
        self.info = {"used_memory": mem.get("used_memory"), "maxmemory": mem.get("maxmemory"),
                     "maxmemory_policy": mem.get("maxmemory_policy"), "keys": keys}

    def status(self) -> dict[str, Any]:
        return {"kind": "redis", "url": self.url, "prefix": self.prefix, "degraded": self.degraded,
                "errors": self.errors, "last_error": self.last_error or None,
                "pending_merge": len(self.dirty), **self.info}
