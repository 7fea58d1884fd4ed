"""From a `sticky-store` URL to a Redis client (SPEC §2.1): one server, Sentinel, Cluster.

Owns the differences between the three deployments so `RedisStore` never branches on
them: how to connect, how to drop dead connections after a failure, what identifies the
Redis being written to (restart detection) and where the memory figures come from.

- `redis://H:P/DB` (`rediss://` for TLS): one server, a bounded blocking pool (a burst of
  new clients queues for a connection instead of opening one each).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

MAX_CONNECTIONS = 16


@dataclass
class Connection:
    kind: str
    client: Any

    async def reset(self) -> None:
        """Drop every pooled connection: after a failure they are dead (a restarted server
        closed them), and the first command after recovery would fail again."""
        await self.client.connection_pool.disconnect()

    async def close(self) -> None:
        await self.client.aclose()

    async def identity(self, marker: str) -> tuple[str, bool]:
        """(the server's run_id, whether the marker key exists)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.info("server")
        pipe.exists(marker)
        server, exists = await pipe.execute()
        return str(server.get("run_id", "")), bool(exists)

    async def memory(self) -> dict[str, Any]:
        mem = await self.client.info("memory")
        keys = await self.client.dbsize()
        return {"used_memory": mem.get("used_memory"), "maxmemory": mem.get("maxmemory"),
                "maxmemory_policy": mem.get("maxmemory_policy"), "keys": keys}


def connect(url: str, timeout_s: float) -> Connection:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=timeout_s,
                                                    socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                                    decode_responses=True)
    return Connection("redis", aioredis.Redis(connection_pool=pool))
