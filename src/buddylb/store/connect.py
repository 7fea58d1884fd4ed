"""From a `sticky-store` URL to a Redis client (SPEC §2.1, `config.storeurl`).

Owns the differences between the three deployments so `RedisStore` never branches on
them: how to connect, how to drop dead connections after a failure, what identifies the
Redis being written to (restart detection), how to run many scripts at once, and where
the memory figures come from.

- `redis://`: one server, a bounded blocking pool (a burst of new clients queues for a
  connection instead of opening one each).
- `redis-sentinel://`: redis-py's Sentinel client.  Every new connection asks the
  Sentinels for the current primary, so dropping the pool after a failure (`reset`) is
  what follows a failover; the insert-or-get script is loaded again on the new primary
  by redis-py when it answers NOSCRIPT.  The identity is the primary's run_id, which a
  failover changes: the anti-entropy pass then restores what the replica had not yet
  received.
- `redis-cluster://`: redis-py's RedisCluster, which follows MOVED/ASK redirections and
  reloads the slot map after errors (`reset` closes it: the next command rediscovers the
  topology).  Every script touches one key, so one slot.  The identity is the set of
  primaries' run_ids; a write-back runs its scripts concurrently instead of in one
  pipeline (a pipeline would span slots).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from buddylb.config.storeurl import parse_store_url

MAX_CONNECTIONS = 16


@dataclass
class Connection:
    kind: str
    client: Any
    extra: list = field(default_factory=list)  # other clients to close (the Sentinels')

    async def reset(self) -> None:
        """Drop every pooled connection: after a failure they are dead (a restarted server
        closed them, or the primary changed), and the next command would fail again."""
        if self.kind == "cluster":
            await self.client.aclose()
        else:
            await self.client.connection_pool.disconnect()

    async def close(self) -> None:
        await self.client.aclose()
        for c in self.extra:
            await c.aclose()

    async def identity(self, marker: str) -> tuple[str, bool]:
        """(the primary's run_id, or the primaries' run_ids joined; whether the marker exists)."""
        if self.kind == "cluster":
            infos = await self.client.info("server", target_nodes=RedisCluster.PRIMARIES)
            run_ids = sorted(str(i.get("run_id", "")) for i in _per_node(infos))
            return ",".join(run_ids), await self.client.get(marker) is not None
        # GET, not EXISTS: reading the marker every second keeps it recently used, so an
        # allkeys-lru Redis under memory pressure does not evict it (which would start a
        # needless write-back pass)
        pipe = self.client.pipeline(transaction=False)
        pipe.info("server")
        pipe.get(marker)
        server, value = await pipe.execute()
        return str(server.get("run_id", "")), value is not None

    async def run_scripts(self, script: Any, calls: list[tuple[list[str], list[Any]]], timeout_s: float) -> list:
        """Run `script` once per (keys, args): one pipeline, or concurrently on a Cluster."""
        if self.kind == "cluster":
            return await asyncio.wait_for(asyncio.gather(*(script(keys=k, args=a) for k, a in calls)), timeout_s)
        pipe = self.client.pipeline(transaction=False)
        for k, a in calls:
            await script(keys=k, args=a, client=pipe)
        return await asyncio.wait_for(pipe.execute(), timeout_s)

    async def memory(self) -> dict[str, Any]:
        if self.kind == "cluster":
            mems = list(_per_node(await self.client.info("memory", target_nodes=RedisCluster.PRIMARIES)))
            keys = await self.client.dbsize(target_nodes=RedisCluster.PRIMARIES)
            return {"used_memory": sum(int(m.get("used_memory", 0)) for m in mems),
                    "maxmemory": sum(int(m.get("maxmemory", 0)) for m in mems),
                    "maxmemory_policy": mems[0].get("maxmemory_policy") if mems else None,
                    "keys": keys, "primaries": len(mems)}
        mem = await self.client.info("memory")
        keys = await self.client.dbsize()
        return {"used_memory": mem.get("used_memory"), "maxmemory": mem.get("maxmemory"),
                "maxmemory_policy": mem.get("maxmemory_policy"), "keys": keys}


def _per_node(reply: Any) -> list[dict]:
    """A command sent to several cluster nodes answers {node: reply}; one node, the reply."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return list(reply.values())
    return [reply]


def connect(url: str, timeout_s: float) -> Connection:
    spec = parse_store_url(url)
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if spec.kind == "sentinel":
        sentinel = Sentinel(list(spec.hosts), sentinel_kwargs={**timeouts, "decode_responses": True}, **timeouts)
        client = sentinel.master_for(spec.master, db=spec.db, decode_responses=True, **timeouts)
        return Connection("sentinel", client, extra=list(sentinel.sentinels))
    if spec.kind == "cluster":
        nodes = [ClusterNode(h, p) for h, p in spec.hosts]
        client = RedisCluster(startup_nodes=nodes, decode_responses=True, cluster_error_retry_attempts=2,
                              max_connections=MAX_CONNECTIONS, require_full_coverage=False, **timeouts)
        return Connection("cluster", client)
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=timeout_s,
                                                    decode_responses=True, **timeouts)
    return Connection("redis", aioredis.Redis(connection_pool=pool))
