"""`/metrics` (SPEC §4): Prometheus text that counts a scripted scenario exactly."""
from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.admin.support import LNX1, VIP, Shop
from tests.support.backends import Backends
from tests.support.balancer import BalancerProcess
from tests.support.net import connect_from, free_port, http_exchange, wait_for

CLIENTS = [f"127.0.0.{n}" for n in range(41, 46)]


def scrape(admin: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of one scrape, parsed by prometheus_client itself."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_buddy_scenario_counted_exactly(shop: Shop) -> None:
    for c in CLIENTS:
        assert shop.get(c, "http").endswith("-http")
        assert shop.get(c, "https").endswith("-dec")
    http_vip, https_vip = f"{VIP}:{shop.ports['v_http']}", f"{VIP}:{shop.ports['v_https']}"
    assert wait_for(lambda: total(scrape(shop.lb.admin), "buddylb_requests_total") == 10, 5)
    m = scrape(shop.lb.admin)

    decisions = {(dict(ls)["farm"], dict(ls)["outcome"]): v for (n, ls), v in m.items()
                 if n == "buddylb_decisions_total" and dict(ls)["context"] == "Admin"}
    assert decisions == {("http", "new"): 5, ("decrypted", "buddy_hit"): 5}
    assert total(m, "buddylb_decisions_total", context="Lab") == 0

    assert total(m, "buddylb_sticky_misses_total", context="Admin") == 5
    assert total(m, "buddylb_sticky_buddy_hits_total", context="Admin") == 5
    assert total(m, "buddylb_sticky_hits_total", context="Admin") == 0
    assert total(m, "buddylb_sticky_resticks_total", context="Admin") == 0
    assert total(m, "buddylb_sticky_entries", context="Admin") == 5
    assert total(m, "buddylb_sticky_capacity", context="Lab") == 1048576

    assert total(m, "buddylb_requests_total", vip=http_vip, farm="http") == 5
    assert total(m, "buddylb_requests_total", vip=https_vip, farm="decrypted") == 5
    per_rserver = {dict(ls)["rserver"] for (n, ls), v in m.items() if n == "buddylb_requests_total" and v}
    assert per_rserver == {"lnx1", "lnx2"}
    assert total(m, "buddylb_responses_total", vip=http_vip, code="2xx") == 5
    assert total(m, "buddylb_responses_total", vip=https_vip, code="2xx") == 5
    assert total(m, "buddylb_responses_total", code="5xx") == 0
    assert total(m, "buddylb_bytes_out_total", vip=http_vip) > 5 * len("lnx1-http")  # heads too: next test

    assert total(m, "buddylb_probe_up", farm="http", rserver="lnx1", probe="TCP-CHECK") == 1
    assert total(m, "buddylb_probe_up", farm="http", rserver="lnx2") == 1
    assert total(m, "buddylb_rserver_available", context="Admin") == 4
    assert total(m, "buddylb_sticky_store_degraded") == 0
    assert total(m, "buddylb_config_generation") == 1
    # the access log still gets every record (metrics only tap it)
    assert wait_for(lambda: shop.lb.log.exists() and len(shop.lb.log.read_text().splitlines()) == 10, 5)


def test_l7_byte_counters_include_heads(shop: Shop) -> None:
    """Issue 14: a GET has no body, yet its head crossed the wire both ways."""
    sent = received = 0
    for n in range(51, 54):
        request, reply = http_exchange(f"127.0.0.{n}", VIP, shop.ports["v_solo"], "/cart?id=7")
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"-http")
        sent, received = sent + len(request), received + len(reply)
    solo = f"{VIP}:{shop.ports['v_solo']}"
    assert wait_for(lambda: total(scrape(shop.lb.admin), "buddylb_requests_total", vip=solo) == 3, 5)
    m = scrape(shop.lb.admin)
    assert total(m, "buddylb_bytes_in_total", vip=solo) == sent
    assert total(m, "buddylb_bytes_out_total", vip=solo) == received


def test_each_metric_declared_once(shop: Shop) -> None:
    shop.get("127.0.0.47", "http")  # labelled event counters appear with their first event
    assert wait_for(lambda: total(scrape(shop.lb.admin), "buddylb_requests_total") == 1, 5)
    with urllib.request.urlopen(f"http://{shop.lb.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    types = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ")]
    assert len(types) == len(set(types))
    assert {"buddylb_decisions_total", "buddylb_requests_total", "buddylb_bytes_in_total", "buddylb_responses_total",
            "buddylb_sticky_entries", "buddylb_probe_up"} <= set(types)
    assert "_created" not in text


L4 = """\
rserver host tcp1
  ip address 127.0.1.11
  inservice
serverfarm host plain
  rserver tcp1 {port}
    inservice
class-map match-all l4-vip
  2 match virtual-address 127.0.0.100 tcp eq {vip}
policy-map type loadbalance first-match l4
  class class-default
    serverfarm plain
policy-map multi-match int
  class l4-vip
    loadbalance vip inservice
    loadbalance policy l4
service-policy input int
"""


def test_l4_connections_and_bytes(tmp_path: Path) -> None:
    port, vip = free_port(LNX1), free_port(VIP)
    with Backends() as bk:
        bk.tcp("tcp1", LNX1, port)
        lb = BalancerProcess(L4.format(port=port, vip=vip), tmp_path)
        try:
            lb.start()
            for n in range(3):
                s = connect_from(f"127.0.0.{51 + n}", VIP, vip)
                try:
                    assert s.recv(100) == b"tcp1\n"
                    s.sendall(b"ping")
                    assert s.recv(100) == b"ping"
                finally:
                    s.close()
            assert wait_for(lambda: total(scrape(lb.admin), "buddylb_connections_total") == 3, 5)
            m = scrape(lb.admin)
            labels = {"vip": f"{VIP}:{vip}", "farm": "plain", "rserver": "tcp1"}
            assert total(m, "buddylb_connections_total", **labels) == 3
            assert total(m, "buddylb_bytes_in_total", **labels) == 3 * len(b"ping")
            assert total(m, "buddylb_bytes_out_total", **labels) == 3 * len(b"tcp1\nping")
            assert total(m, "buddylb_decisions_total", context="Admin", farm="plain", outcome="no_sticky") == 3
            assert total(m, "buddylb_requests_total") == 0
        finally:
            lb.stop()
