"""Issue 15 (a): redis-server killed with -9 and restarted empty moves no client.

One `buddylb run` node, a real redis-server without persistence (`--save ''
--appendonly no`).  20 clients make one request each; Redis is killed and restarted
empty on the same port; a throwaway client moves the round robin one step (so a client
decided anew would land elsewhere); the same 20 clients come back after their local
copies' validity ran out.  None moves, none is decided as `new`, and the node writes the
20 entries back to the new Redis."""
from __future__ import annotations

import time
import urllib.request

import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import VIP
from tests.e2e.test_redis_nodes import _backends, node_config
from tests.support.net import http_get, wait_for
from tests.support.redis import entry_key

CLIENTS = [f"127.0.3.{n}" for n in range(1, 21)]


def decisions(lb) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "buddylb_decisions_total":
                out[s.labels["outcome"]] = out.get(s.labels["outcome"], 0) + s.value
    return out


def test_redis_restarted_empty_moves_no_client(ports, backends, balancer, redis_server):
    _backends(backends, ports)
    text = node_config(ports, "a", redis_server.url)
    lb = balancer(text)
    vip = (VIP, ports["vip_a_http"])
    first = {c: http_get(c, VIP, vip[1])[2] for c in CLIENTS}
    assert len(set(first.values())) == 2  # round robin spread them over lnx1 and lnx2
    r = redis.Redis(port=redis_server.port)
    keys = [entry_key(text, "shop:", c, vip) for c in CLIENTS]
    assert all(r.exists(k) for k in keys)

    redis_server.kill()
    redis_server.start()  # same port, empty
    assert r.dbsize() == 0
    http_get("127.0.3.250", VIP, vip[1])  # one new client: the round robin moves one step
    time.sleep(1.2)  # past the 1 s validity of the node's local copies
    again = {c: http_get(c, VIP, vip[1])[2] for c in CLIENTS}
    moved = [c for c in CLIENTS if again[c] != first[c]]
    assert moved == [], f"{len(moved)} of {len(CLIENTS)} clients moved"
    assert decisions(lb).get("new") == len(CLIENTS) + 1  # the 20 first visits and the throwaway client
    assert wait_for(lambda: all(r.exists(k) for k in keys), 10)  # the shared view is rebuilt
    store = lb.api("/show/stats-sticky")["data"][0]["store"]
    assert not store["degraded"]
    assert store["repairs"] + store["anti_entropy"]["written"] >= len(CLIENTS)
