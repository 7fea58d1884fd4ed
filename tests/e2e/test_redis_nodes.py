"""Several `buddylb run` processes share one sticky view through a real redis-server (issue 7)."""
from __future__ import annotations

import threading
import time

import redis

from tests.e2e.configs import farm, hosts, service, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import http_get, wait_for
from tests.support.redis import entry_key


def node_config(ports, node: str, redis_url: str, prefix: str = "shop:", timeout_ms: int = 200) -> str:
    """The shopping cart, both VIPs L7; each node has its own VIP ports on 127.0.0.100."""
    text = f"sticky-store {redis_url} prefix {prefix} timeout {timeout_ms}\n"
    text += hosts("lnx1", "lnx2")
    text += farm("http", [("lnx1", ports["lnx1_http"], "blue"), ("lnx2", ports["lnx2_http"], "red")])
    text += farm("decrypted", [("lnx1", ports["lnx1_dec"], "blue"), ("lnx2", ports["lnx2_dec"], "red")])
    text += sticky_ip("stick-cart", "http", "alpha").replace("address source", "address both")
    text += sticky_ip("stick-credit", "decrypted", "alpha").replace("address source", "address both")
    text += service(vip_policy("http-vip", ports[f"vip_{node}_http"], "stick-cart", http=True),
                    vip_policy("https-vip", ports[f"vip_{node}_https"], "stick-credit", http=True))
    return text


def _backends(backends, ports):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])


def test_http_on_node_a_and_https_on_node_b_reach_buddies(ports, backends, balancer, redis_server):
    _backends(backends, ports)
    balancer(node_config(ports, "a", redis_server.url))
    balancer(node_config(ports, "b", redis_server.url))
    # node B's round robin starts one step ahead, so without the shared view it would differ
    http_get("127.0.0.250", VIP, ports["vip_b_https"])
    for n in range(10, 40):
        c = f"127.0.0.{n}"
        a = http_get(c, VIP, ports["vip_a_http"])[2]
        b = http_get(c, VIP, ports["vip_b_https"])[2]
        assert a == b, (c, a, b)
    keys = redis.Redis(port=redis_server.port).keys("shop:*")
    assert len(keys) == 31


def test_fifty_clients_race_both_nodes_at_once(ports, backends, balancer, redis_server):
    """The insert-or-get race, not the store timeout: at load 4 on two cores a Redis round
    trip took over 200 ms, both nodes turned degraded (as they must) and decided locally,
    splitting clients.  2 s keeps this test on the race; test_redis_killed_under_load_then_back
    and tests/store cover the timeout and the degraded mode."""
    _backends(backends, ports)
    balancer(node_config(ports, "a", redis_server.url, timeout_ms=2000))
    balancer(node_config(ports, "b", redis_server.url, timeout_ms=2000))
    http_get("127.0.0.250", VIP, ports["vip_b_https"])
    clients = [f"127.0.1.{n}" for n in range(100, 150)]
    results: dict[str, list] = {c: [] for c in clients}
    barrier = threading.Barrier(len(clients) * 2)

    def hit(c: str, port: int) -> None:
        barrier.wait(10)
        results[c].append(http_get(c, VIP, port)[2])

    threads = [threading.Thread(target=hit, args=(c, ports[p])) for c in clients for p in ("vip_a_http", "vip_b_https")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    split = {c: r for c, r in results.items() if len(set(r)) != 1 or len(r) != 2}
    assert split == {}  # every client ended on one buddy real group (same physical server)


def test_redis_killed_under_load_then_back(ports, backends, balancer, redis_server):
    _backends(backends, ports)
    text = node_config(ports, "a", redis_server.url)
    lb = balancer(text)
    failures: list = []
    stop = threading.Event()

    def load(n: int) -> None:
        c = f"127.0.2.{n}"
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                st, _, _ = http_get(c, VIP, ports["vip_a_http"])
                if st != 200:
                    failures.append((c, st))
            except OSError as exc:
                failures.append((c, repr(exc)))

    threads = [threading.Thread(target=load, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        redis_server.stop()
        assert wait_for(lambda: lb.api("/show/stats-sticky")["data"][0]["store"]["degraded"], 10)
        time.sleep(1.0)  # keep serving while Redis is gone
        redis_server.start()
        assert wait_for(lambda: not lb.api("/show/stats-sticky")["data"][0]["store"]["degraded"], 15)
        http_get("127.0.2.200", VIP, ports["vip_a_http"])  # a new client after recovery
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    r = redis.Redis(port=redis_server.port)
    key = entry_key(text, "shop:", "127.0.2.200", (VIP, ports["vip_a_http"]))
    assert wait_for(lambda: r.exists(key), 5)  # the store is used again
    assert "unavailable" in lb.stderr() and "is back" in lb.stderr()


def test_decisions_are_counted_once_with_the_redis_store(ports, backends, balancer, redis_server):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    _backends(backends, ports)
    lb = balancer(node_config(ports, "a", redis_server.url))
    for n in range(60, 65):
        http_get(f"127.0.0.{n}", VIP, ports["vip_a_http"])
        for _ in range(3):  # hits on a current local copy: the fast path, no task, no round trip
            http_get(f"127.0.0.{n}", VIP, ports["vip_a_http"])
        http_get(f"127.0.0.{n}", VIP, ports["vip_a_https"])
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    counts = {(s.labels["farm"], s.labels["outcome"]): s.value
              for fam in text_string_to_metric_families(text) if fam.name == "buddylb_decisions"
              for s in fam.samples if s.name == "buddylb_decisions_total"}
    assert counts == {("http", "new"): 5, ("http", "sticky_hit"): 15, ("decrypted", "buddy_hit"): 5}
