"""The sticky database against both stores (memory and a real redis-server), parametrised,
plus what only a shared store has: two nodes, the first-decision race, Redis loss."""
from __future__ import annotations

import asyncio
import time

import pytest
import redis

from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE, TIERS
from tests.core.engine import load
from tests.support.redis import RedisServer
from buddylb.core.decide import Flow, connection_closed, decide
from buddylb.core.state import RuntimeState
from buddylb.core.store import MemoryStore, locate
from buddylb.core.sticky import StickyTable
from buddylb.store import record
from buddylb.store.redis import RedisStore

SECRET = b"s" * 32
CLIENTS = [f"127.0.0.{n}" for n in range(10, 22)]


@pytest.fixture(scope="module")
def redis_server():
    """One redis-server for the module (each test uses its own key prefix): shadows the
    per-test fixture of tests/conftest.py, to start it once."""
    srv = RedisServer().start()
    try:
        yield srv
    finally:
        srv.cleanup()


class Node:
    """One balancer's engine with the store bracket the data path uses."""

    def __init__(self, text: str, store, clock=None) -> None:
        self.snap = load(text)
        self.state = RuntimeState()
        self.tables = {c.name: StickyTable.for_context(c) for c in self.snap.contexts.values()}
        self.store = store
        self.clock = clock or (lambda: 1000.0)

    async def connect(self, client: str, vip: tuple[str, int]):
        v = self.snap.vips[vip]
        flow = Flow(client, v.address)
        now = self.clock()
        where = locate(self.snap, v, flow, SECRET)
        if where is not None:
            await self.store.load(self.tables[v.context], where[0], where[1], now)
        d = decide(self.snap, self.state, self.tables, v, flow, now, SECRET)

        def redecide():
            connection_closed(self.state, d, now)
            return decide(self.snap, self.state, self.tables, v, flow, now, SECRET)

        return await self.store.commit(d, now, redecide)

    async def visit(self, client: str, vip: tuple[str, int]):
        d = await self.connect(client, vip)
        connection_closed(self.state, d, self.clock())
        self.store.closed(d, self.clock())
        return d


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    created = []

    def factory(prefix: str = "t:"):
        if request.param == "memory":
            return MemoryStore()
        srv = request.getfixturevalue("redis_server")
        st = RedisStore(srv.url, prefix=f"{prefix}{request.node.name}:", timeout_s=0.5)
        created.append(st)
        return st

    yield factory
    for st in created:
        asyncio.run(st.client.aclose())


def entry_key(node: "Node", prefix: str, client: str, vip=HTTP) -> str:
    """The Redis key of `client`'s entry as `node` writes it (store.record)."""
    v = node.snap.vips[vip]
    scope, key = locate(node.snap, v, Flow(client, v.address), SECRET)
    return record.entry_key(prefix, v.context, scope, key)


def rs(d):
    return d.member.rserver if d.member else None


async def _started(store):
    if isinstance(store, RedisStore):
        await store.start()
    return store


def run(coro):
    return asyncio.run(coro)


def test_rules_new_hit_buddy_restick_on_both_stores(make_store):
    async def go():
        node = Node(ONE_TO_ONE, await _started(make_store()))
        for c in CLIENTS:
            d1 = await node.visit(c, HTTP)
            assert d1.outcome == "new"
            assert (await node.visit(c, HTTP)).outcome == "sticky_hit"
            d2 = await node.visit(c, HTTPS)
            assert d2.outcome == "buddy_hit" and rs(d2) == rs(d1)
        c = CLIENTS[0]
        first = rs(await node.visit(c, HTTPS))
        node.state.set_probe(("Admin", "decrypted", first), False)
        d = await node.visit(c, HTTPS)
        assert d.outcome == "restick" and rs(d) != first
        if isinstance(node.store, RedisStore):
            await node.store.stop()

    run(go())


def test_many_to_one_tiers_on_both_stores(make_store):
    async def go():
        node = Node(TIERS, await _started(make_store()))
        web, app = ("127.0.0.100", 80), ("127.0.0.100", 9000)
        for c in CLIENTS:
            w = rs(await node.visit(c, web))
            assert rs(await node.visit(c, app)) == ("db1" if w in ("lnx1", "lnx2") else "db2")
            assert rs(await node.visit(c, web)) == w
        if isinstance(node.store, RedisStore):
            await node.store.stop()

    run(go())


def test_two_nodes_share_one_view(redis_server):
    async def go():
        a = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="two:", timeout_s=0.5)))
        b = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="two:", timeout_s=0.5)))
        await b.visit("127.0.0.250", HTTPS)  # b's round robin is now one step ahead of a's
        for c in CLIENTS:
            d1 = await a.visit(c, HTTP)
            d2 = await b.visit(c, HTTPS)
            assert rs(d1) == rs(d2) and d2.outcome == "buddy_hit", (c, rs(d1), rs(d2), d2.outcome)
        for n in (a, b):
            await n.store.stop()

    run(go())


def test_first_decision_race_two_nodes_fifty_clients(redis_server):
    async def go():
        a = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="race:", timeout_s=0.5)))
        b = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="race:", timeout_s=0.5)))
        await b.visit("127.0.0.250", HTTPS)
        clients = [f"127.0.{n // 200}.{n % 200 + 1}" for n in range(50)]
        pairs = await asyncio.gather(*[asyncio.gather(a.connect(c, HTTP), b.connect(c, HTTPS)) for c in clients])
        losers = 0
        for c, (d1, d2) in zip(clients, pairs):
            assert d1.member.buddy_group == d2.member.buddy_group, c
            losers += d1.outcome != "new" or d2.outcome != "new"
        assert losers == 50  # every pair raced; in each, exactly one side followed the other
        for n in (a, b):
            await n.store.stop()

    run(go())


def test_prefixes_and_contexts_do_not_collide(redis_server):
    async def go():
        one = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="clusterA:", timeout_s=0.5)))
        two = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="clusterB:", timeout_s=0.5)))
        d = await one.visit("127.0.0.77", HTTP)
        assert d.outcome == "new"
        assert (await two.visit("127.0.0.77", HTTP)).outcome == "new"
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        keys = sorted(r.keys("cluster*"))
        assert keys == [entry_key(one, "clusterA:", "127.0.0.77"), entry_key(two, "clusterB:", "127.0.0.77")]
        scope = one.snap.contexts["Admin"].scopes["alpha"]
        farms = tuple(rs(d) if f == "http" else None for f in scope.farms)
        assert r.get(keys[0]) == record.pack(scope.farm_index["http"], farms)  # one packed string per entry
        for n in (one, two):
            await n.store.stop()

    run(go())


def test_expiry_is_a_redis_ttl(redis_server):
    async def go():
        text = ONE_TO_ONE.replace("  timeout 30\n", "  timeout 1s\n")
        node = Node(text, await _started(RedisStore(redis_server.url, prefix="ttl:", timeout_s=0.5, cache_s=0.2)),
                    clock=time.monotonic)
        await node.visit("127.0.0.5", HTTP)
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        key = entry_key(node, "ttl:", "127.0.0.5")
        await asyncio.sleep(0.3)  # the TTL refresh on close is batched every 100 ms
        assert 0 < r.pttl(key) <= 1000
        await asyncio.sleep(1.3)
        assert not r.exists(key)
        assert (await node.visit("127.0.0.5", HTTP)).outcome == "new"
        await node.store.stop()

    run(go())


def test_redis_loss_degrades_then_merges_back():
    srv = RedisServer().start()
    try:
        async def go():
            store = RedisStore(srv.url, prefix="loss:", timeout_s=0.2)
            node = Node(ONE_TO_ONE, await _started(store), clock=time.monotonic)
            before = rs(await node.visit("127.0.0.1", HTTP))
            srv.stop()
            for n in range(2, 12):  # no decision fails while Redis is gone
                d = await node.visit(f"127.0.0.{n}", HTTP)
                assert d.member is not None
            assert store.status()["degraded"] and store.status()["pending_merge"] >= 1
            assert rs(await node.visit("127.0.0.1", HTTPS)) == before  # local table still answers
            srv.start()
            for _ in range(100):
                if not store.degraded:
                    break
                await asyncio.sleep(0.1)
            assert not store.degraded
            r = redis.Redis(port=srv.port, decode_responses=True)
            assert r.exists(entry_key(node, "loss:", "127.0.0.5"))  # merged back
            await store.stop()

        run(go())
    finally:
        srv.cleanup()


def test_a_busy_client_still_sees_another_nodes_change_within_the_cache_validity(redis_server):
    async def go():
        mk = lambda: RedisStore(redis_server.url, prefix="stale:", timeout_s=0.5, cache_s=0.5)  # noqa: E731
        a = Node(ONE_TO_ONE, await _started(mk()), clock=time.monotonic)
        b = Node(ONE_TO_ONE, await _started(mk()), clock=time.monotonic)
        c = "127.0.0.90"
        first = rs(await a.visit(c, HTTP))
        assert rs(await b.visit(c, HTTPS)) == first
        a.state.set_probe(("Admin", "http", first), False)  # node A re-sticks the client
        moved = rs(await a.visit(c, HTTP))
        assert moved != first
        followed_at = None
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # node B keeps seeing the client every 0.2 s
            if rs(await b.visit(c, HTTPS)) == moved:
                followed_at = time.monotonic() - started
                break
            await asyncio.sleep(0.2)
        assert followed_at is not None and followed_at < 1.0  # cache_s 0.5, plus one visit period
        for n in (a, b):
            await n.store.stop()

    run(go())


def test_a_burst_of_first_decisions_shares_one_pipeline(redis_server):
    """A cold node taking 100 new clients at once: its loads and inserts of one loop pass go
    as one pipeline (store.batch), so the burst neither queues for the pool's 16 connections
    nor opens them (one by one it opened 15 and, at load 4 with a 200 ms store timeout,
    overran the timeout and turned degraded: tests/e2e/test_redis_nodes' race split)."""
    async def go():
        r = redis.Redis(port=redis_server.port)
        node = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="burst:", timeout_s=0.5)))
        opened = r.info("stats")["total_connections_received"]
        clients = [f"127.0.{n // 200}.{n % 200 + 1}" for n in range(100)]
        ds = await asyncio.gather(*[node.connect(c, HTTP) for c in clients])
        assert [d.outcome for d in ds] == ["new"] * 100
        assert not node.store.degraded and node.store.errors == 0
        assert node.store.ops.pipelines <= 4  # the loads in one, the inserts in one (or a few passes)
        assert r.info("stats")["total_connections_received"] - opened <= 2
        assert len(r.keys("burst:*")) == 100
        # a second node sees every entry and follows it (the batched GETs read them back)
        other = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="burst:", timeout_s=0.5)))
        again = await asyncio.gather(*[other.connect(c, HTTP) for c in clients])
        assert [rs(d) for d in again] == [rs(d) for d in ds]
        for n in (node, other):
            await n.store.stop()

    run(go())


def test_a_batched_insert_survives_a_script_flush(redis_server):
    """Redis lost the insert-or-get script (SCRIPT FLUSH, as after a restart): the batch gets
    NOSCRIPT, loads the script and sends those inserts again; nothing degrades."""
    async def go():
        r = redis.Redis(port=redis_server.port)
        node = Node(ONE_TO_ONE, await _started(RedisStore(redis_server.url, prefix="flush:", timeout_s=0.5)))
        await node.connect("127.0.0.1", HTTP)
        r.script_flush()
        ds = await asyncio.gather(*[node.connect(f"127.0.0.{n}", HTTP) for n in range(2, 12)])
        assert [d.outcome for d in ds] == ["new"] * 10
        assert not node.store.degraded and node.store.errors == 0
        assert len(r.keys("flush:*")) == 11
        await node.store.stop()

    run(go())
