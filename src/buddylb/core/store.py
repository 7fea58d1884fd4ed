"""The sticky-store interface: where the sticky database of SPEC §3 is kept.

`decide()` always reads and writes the per-context `StickyTable` in this process, so a
decision stays a few dictionary operations.  A store adds what the table alone cannot:
sharing it with other balancers.  The data path brackets a decision with two calls:

    await store.load(table, scope, key, now)   # make the local copy current
    d = decide(...)                            # sans-IO, on the local table
    d = await store.commit(d, now, redecide)   # publish; a lost first-decision race
                                               # re-decides on the winner's entry

Both awaits are skipped when they have nothing to do (`fresh_copy`, `settle`): a client
whose local copy is current and whose decision changes nothing costs no task and no
round trip, which is most requests of a busy client.

`MemoryStore` (the default) needs neither, so the data path skips the awaits entirely
(`shared` is False).  `store.redis.RedisStore` keeps entries in Redis with an atomic
insert-or-get, so two nodes that see a new client at once end on one rserver.

This module only states the contract; it imports no I/O library.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Protocol

from buddylb.core.classify import classify
from buddylb.core.decide import Decision, Flow, sticky_key
from buddylb.core.snapshot import Scope, Snapshot, Vip
from buddylb.core.sticky import StickyTable


class StickyStore(Protocol):
    shared: bool

    async def load(self, table: StickyTable, scope: Scope, key: Hashable, now: float) -> None: ...

    def fresh_copy(self, context: str, scope: Scope, key: Hashable, now: float) -> bool: ...

    def settle(self, d: Decision) -> bool: ...

    async def commit(self, d: Decision, now: float, redecide: Callable[[], Decision]) -> Decision: ...

    def closed(self, d: Decision, now: float) -> None: ...

    def status(self) -> dict[str, Any]: ...

    async def cluster(self, me: dict[str, Any]) -> dict[str, Any]: ...


class MemoryStore:
    """The default: the local StickyTable is the whole sticky database."""

    shared = False

    async def load(self, table: StickyTable, scope: Scope, key: Hashable, now: float) -> None:
        return None

    def fresh_copy(self, context: str, scope: Scope, key: Hashable, now: float) -> bool:
        return True

    def settle(self, d: Decision) -> bool:
        return True

    async def commit(self, d: Decision, now: float, redecide: Callable[[], Decision]) -> Decision:
        return d

    def closed(self, d: Decision, now: float) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"kind": "memory", "degraded": False}

    async def cluster(self, me: dict[str, Any]) -> dict[str, Any]:
        """Without a shared store a node shares its sticky view with nobody."""
        return {"nodes": [dict(me, age_s=0.0, self=True)], "config_checksums": 1,
                "warnings": ["no sticky-store: this node shares its sticky entries with no other node"]}


def locate(snap: Snapshot, vip: Vip, flow: Flow, secret: bytes) -> tuple[Scope, Hashable] | None:
    """The (scope, key) a decision for `flow` will read, if an entry can exist for it."""
    ctx = snap.contexts[vip.context]
    cls = classify(vip.policy, flow.url, flow.headers, flow.cookies)
    if cls is None or not cls.sticky:
        return None
    scope = ctx.stickies[cls.sticky].scope
    info = sticky_key(snap, scope, flow, secret)
    if info.key is None or info.minted:
        return None
    return scope, info.key
