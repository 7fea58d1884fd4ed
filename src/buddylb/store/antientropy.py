"""Anti-entropy: after Redis restarted empty (or failed over), write this node's entries back.

Why: a Redis without persistence comes back empty; entries clients had not touched
during the outage would be gone from the shared view, and every node would balance those
clients anew when they return (issue 15: 15 of 20 clients moved).  Each node still holds
its live entries in its local table, so together the nodes can rebuild the shared view.

Detection (`Identity`): the Redis server's `run_id` (a restart or a failover changes it)
and a marker key written once a write-back has completed (an emptied Redis, FLUSHALL, or
an LRU eviction of the marker, loses it).  Either one differing from what this node last
confirmed starts a pass.  The marker and run_id are recorded only after the pass
completes, so a pass cut short by another failure is started again.

The pass (`write_back`): every live local entry, in batches of `BATCH` pipelined
WRITE_BACK scripts, at most `RATE` entries per second (a large node must not flood a
Redis that has just come back), each written with its remaining lifetime as TTL; the
script keeps a copy at least as recent (newest stamp wins, see `store.record`).  It never
deletes a local entry.  It owns no connection: it is handed the client and the tables.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from buddylb.core import sticky_scan
from buddylb.core.sticky import StickyTable
from buddylb.store import record
from buddylb.store.connect import Connection

BATCH = 256
RATE = 20_000  # entries per second written back, per node


@dataclass
class Identity:
    """What this node last confirmed about the Redis it writes to."""

    run_id: str | None = None
    passes: int = 0
    written: int = 0  # entries the last passes wrote (Redis had none or an older copy)
    kept: int = 0  # entries Redis already held at least as recent
    last_pass_at: float | None = None  # wall clock
    last_reason: str = ""

    def reason(self, run_id: str, has_marker: bool) -> str | None:
        """Why a pass is due, or None when Redis is the one this node already filled."""
        if self.run_id is None:  # this node's first contact: its tables are empty
            return None
        if run_id != self.run_id:
            return f"run_id changed ({self.run_id[:8]} -> {run_id[:8]}: restart or failover)"
        if not has_marker:
            return "marker missing (Redis emptied)"
        return None

    def status(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "passes": self.passes, "written": self.written, "kept": self.kept,
                "last_pass_at": self.last_pass_at, "last_reason": self.last_reason or None}


async def write_back(conn: Connection, prefix: str, tables: Mapping[str, StickyTable], now: Callable[[], float],
                     timeout_s: float, rate: int = RATE) -> tuple[int, int]:
    """Write every live local entry whose copy in Redis is missing or older, at most
    `rate` per second (`sticky-store ... writeback-rate N`).

    Returns (written, kept).  Raises the client's errors: the caller degrades."""
    script = conn.client.register_script(record.WRITE_BACK)
    written = kept = 0
    for table in list(tables.values()):
        for st in list(table.scopes.values()):
            keys = sticky_scan.keys(table, st.scope.name)  # a copy: the data path keeps running between batches
            for start in range(0, len(keys), BATCH):
                t0 = time.monotonic()
                calls: list[tuple[list[str], list[Any]]] = []
                at = now()
                for key in keys[start:start + BATCH]:
                    e = table.peek(st.scope.name, key, at)
                    if e is None:
                        continue
                    left = table.expires_in(e, at)
                    ttl_ms = int((st.timeout if left is None else left) * 1000)
                    if ttl_ms <= 0:
                        continue
                    rk = record.entry_key(prefix, table.context, st.scope, key)
                    calls.append(([rk], [record.pack(e.last, e.farms), ttl_ms]))
                if calls:
                    results = await conn.run_scripts(script, calls, max(timeout_s * 4, 1.0))
                    done = sum(1 for r in results if int(r) == 1)
                    written += done
                    kept += len(calls) - done
                pause = len(calls) / rate - (time.monotonic() - t0)
                await asyncio.sleep(max(pause, 0))
    return written, kept
