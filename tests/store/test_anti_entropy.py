"""Anti-entropy (issue 15): Redis restarted empty or failed over must move no client.

Two mechanisms, each tested alone on a real redis-server: read repair (a load that finds
nothing in Redis keeps the live local entry and writes it back) and the write-back pass
(every live local entry, the newest copy winning, started when the marker or the run_id
says Redis is not the one this node filled)."""
from __future__ import annotations

import asyncio
import time

import redis

from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE
from tests.store.test_stores import Node, entry_key, rs
from buddylb.store import antientropy, record
from buddylb.store.redis import RedisStore

CLIENTS = [f"127.0.0.{n}" for n in range(30, 50)]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _node(url: str, prefix: str, clock: Clock) -> Node:
    store = RedisStore(url, prefix=prefix, timeout_s=0.5)
    node = Node(ONE_TO_ONE, store, clock=clock)
    store.attach(lambda: node.tables, clock)
    await store.start()
    return node


def test_a_load_that_finds_nothing_keeps_the_local_entry_and_writes_it_back(redis_server):
    async def go():
        clock = Clock()
        node = await _node(redis_server.url, "rr:", clock)
        first = {c: rs(await node.visit(c, HTTP)) for c in CLIENTS}
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        r.flushall()
        clock.t += 5  # past the 1 s local-copy validity: the next visit loads from Redis
        # a throwaway new client moves the round robin one step: a fresh decision would differ
        await node.visit("127.0.0.250", HTTP)
        again = {c: await node.visit(c, HTTP) for c in CLIENTS}
        assert {c: rs(d) for c, d in again.items()} == first
        assert {d.outcome for d in again.values()} == {"sticky_hit"}
        assert node.store.repairs == len(CLIENTS)
        for c in CLIENTS:
            assert r.get(entry_key(node, "rr:", c)) is not None
        await node.store.stop()

    asyncio.run(go())


def test_write_back_pass_newest_copy_wins(redis_server):
    async def go():
        ca, cb = Clock(), Clock()
        a = await _node(redis_server.url, "ae:", ca)
        b = await _node(redis_server.url, "ae:", cb)
        c = "127.0.0.60"
        first = rs(await a.visit(c, HTTP))
        assert rs(await b.visit(c, HTTPS)) == first  # b learnt the entry from Redis
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        r.flushall()
        # b's copy: its rserver in farm http changed, but 10 minutes ago (older than a's)
        scope = b.snap.contexts["Admin"].scopes["alpha"]
        (st, key, e), = [x for x in b.tables["Admin"].items(cb()) if x[0].scope is scope]
        other = "lnx2" if first == "lnx1" else "lnx1"
        farms = tuple(other if f == "http" else rs_ for f, rs_ in zip(scope.farms, e.farms))
        b.tables["Admin"].adopt(scope.name, key, farms, scope.farm_index["http"], cb() - 600)
        k = entry_key(a, "ae:", c)
        written, kept = await antientropy.write_back(b.store.conn, "ae:", b.tables, cb, 0.5)
        assert (written, kept) == (1, 0) and r.get(k).split(",")[1:].count(other) == 1
        written, kept = await antientropy.write_back(a.store.conn, "ae:", a.tables, ca, 0.5)
        assert (written, kept) == (1, 0)  # a's copy is newer: it replaces b's
        assert r.get(k) == record.pack(*_rec(a, c))
        assert 29 * 60_000 < r.pttl(k) <= 30 * 60_000
        written, kept = await antientropy.write_back(b.store.conn, "ae:", b.tables, cb, 0.5)
        assert (written, kept) == (0, 1)  # b's older copy never replaces a newer one
        assert r.get(k) == record.pack(*_rec(a, c))
        for n in (a, b):
            await n.store.stop()

    asyncio.run(go())


def _rec(node: Node, client: str) -> tuple[int, tuple]:
    (st, key, e), = list(node.tables["Admin"].items(node.clock()))
    return e.last, e.farms


def test_an_emptied_redis_is_detected_and_refilled(redis_server):
    async def go():
        clock = Clock()
        node = await _node(redis_server.url, "det:", clock)
        for c in CLIENTS:
            await node.visit(c, HTTP)
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        assert node.store.identity.run_id is not None and r.exists("{det:}marker")
        r.flushall()
        for _ in range(40):  # the check runs every second
            if node.store.identity.passes:
                break
            await asyncio.sleep(0.1)
        assert node.store.identity.passes == 1 and node.store.identity.written == len(CLIENTS)
        assert "marker missing" in node.store.identity.last_reason
        assert all(r.exists(entry_key(node, "det:", c)) for c in CLIENTS) and r.exists("{det:}marker")
        await node.store.stop()

    asyncio.run(go())


def test_a_write_back_pass_keeps_to_its_rate(redis_server):
    """`sticky-store ... writeback-rate N`: a node that has just seen Redis come back
    must not flood it (SCALING.md: with many nodes, the shard is the limit)."""
    async def go():
        clock = Clock()
        node = await _node(redis_server.url, "rate:", clock)
        clients = [f"127.0.{n // 250}.{n % 250 + 1}" for n in range(600)]
        for c in clients:
            await node.visit(c, HTTP)
        redis.Redis(port=redis_server.port).flushall()
        t0 = time.monotonic()
        written, kept = await antientropy.write_back(node.store.conn, "rate:", node.tables, clock, 0.5, rate=1000)
        took = time.monotonic() - t0
        assert written + kept == 600  # (the node's own check may start a pass of its own meanwhile)
        assert took >= 0.5  # 600 entries at 1000/s: the last batch of 256 starts after >= 0.5 s
        await node.store.stop()

    asyncio.run(go())
