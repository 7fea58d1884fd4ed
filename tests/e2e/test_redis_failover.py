"""Issue 15 (b, c): the shared sticky store follows Redis failovers, with two `buddylb run`
nodes under load and real redis-server processes on loopback.

(b) Sentinel: a primary, a replica, three Sentinels (down after 1 s).  Clients alternate
    between node A's HTTP VIP and node B's HTTPS VIP; the primary is killed with -9.  No
    request fails; every client stays on one server (the buddy pair) throughout; the nodes
    leave degraded mode once the Sentinels promote the replica, and write to it.
(c) Cluster: six processes, three primaries with a replica each.  Stickiness holds across
    the two nodes; a primary is killed; clients keep their servers, no request fails.
"""
from __future__ import annotations

import threading
import time

import redis

from tests.e2e.conftest import VIP
from tests.e2e.test_redis_nodes import _backends, node_config
from tests.support.net import http_get, wait_for
from tests.support.redis_topology import RedisClusterSet, SentinelSet


class Load:
    """Clients alternating node A (HTTP VIP) and node B (HTTPS VIP), bounded in time."""

    def __init__(self, ports, clients: list[str], seconds: float = 60) -> None:
        self.ports, self.clients, self.seconds = ports, clients, seconds
        self.seen: dict[str, set] = {c: set() for c in clients}
        self.served: dict[str, int] = {c: 0 for c in clients}
        self.failures: list = []
        self.requests = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in clients]

    def _run(self, c: str) -> None:
        deadline = time.monotonic() + self.seconds
        n = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            port = self.ports["vip_a_http" if n % 2 == 0 else "vip_b_https"]
            n += 1
            try:
                status, _, body = http_get(c, VIP, port)
                if status != 200:
                    self.failures.append((c, status))
                else:
                    self.seen[c].add(body)
                    self.served[c] += 1
                self.requests += 1
            except OSError as exc:
                self.failures.append((c, repr(exc)))
            time.sleep(0.02)

    def warm(self) -> bool:
        """Every client has been served by both nodes: each node holds its entry locally
        (a node that never saw a client cannot know its server while no primary answers)."""
        return all(n >= 2 for n in self.served.values())

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _degraded(lb) -> bool:
    return lb.api("/show/stats-sticky")["data"][0]["store"]["degraded"]


def _two_nodes(ports, backends, balancer, url: str):
    _backends(backends, ports)
    a = balancer(node_config(ports, "a", url))
    b = balancer(node_config(ports, "b", url))
    http_get("127.0.0.250", VIP, ports["vip_b_https"])  # B's round robin one step ahead of A's
    return a, b


def test_sentinel_failover_under_load_fails_no_request(ports, backends, balancer):
    topo = SentinelSet()
    try:
        topo.start()
        a, b = _two_nodes(ports, backends, balancer, topo.url)
        old = topo.primary_port()
        clients = [f"127.0.4.{n}" for n in range(1, 9)]
        with Load(ports, clients) as load:
            assert wait_for(load.warm, 10)
            topo.primary.kill()
            assert wait_for(lambda: topo.primary_port() != old, 20)  # the Sentinels promoted the replica
            assert wait_for(lambda: not _degraded(a) and not _degraded(b), 20)
            served = load.requests
            assert wait_for(lambda: load.requests > served + 20, 10)  # still served after the failover
        assert load.failures == []
        assert {c: len(s) for c, s in load.seen.items()} == {c: 1 for c in clients}  # nobody moved
        http_get("127.0.4.200", VIP, ports["vip_a_http"])  # a new client lands on the new primary
        new_primary = redis.Redis(port=topo.primary_port())
        assert wait_for(lambda: new_primary.dbsize() >= len(clients) + 2, 10)
        assert "unavailable" in a.stderr() or "unavailable" in b.stderr()
    finally:
        topo.cleanup()


def test_redis_cluster_shares_stickiness_and_survives_a_primary_kill(ports, backends, balancer):
    topo = RedisClusterSet()
    try:
        topo.start()
        a, b = _two_nodes(ports, backends, balancer, topo.url)
        clients = [f"127.0.5.{n}" for n in range(1, 31)]
        before = {}
        for c in clients:  # stickiness across nodes: HTTP on A, HTTPS on B reach one server
            before[c] = http_get(c, VIP, ports["vip_a_http"])[2]
            assert http_get(c, VIP, ports["vip_b_https"])[2] == before[c], c
        keys = sum(redis.Redis(port=n.port).dbsize() for n in topo.primaries())
        assert keys >= len(clients)
        spread = [redis.Redis(port=n.port).dbsize() for n in topo.primaries()]
        assert sum(1 for k in spread if k) >= 2  # the entries are spread over the shards
        victim = topo.primaries()[0]
        with Load(ports, clients[:8], seconds=60) as load:
            assert wait_for(load.warm, 10)
            victim.kill()
            assert wait_for(lambda: len(topo.primaries()) == 3 and victim not in topo.primaries(), 20)
            assert wait_for(lambda: not _degraded(a) and not _degraded(b), 20)
            served = load.requests
            assert wait_for(lambda: load.requests > served + 20, 10)
        assert load.failures == []
        assert {c: len(s) for c, s in load.seen.items()} == {c: 1 for c in clients[:8]}
        for c in clients:  # every client still reaches its server, on both nodes
            assert http_get(c, VIP, ports["vip_a_http"])[2] == before[c], c
            assert http_get(c, VIP, ports["vip_b_https"])[2] == before[c], c
    finally:
        topo.cleanup()
