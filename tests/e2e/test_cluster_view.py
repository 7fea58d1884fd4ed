"""Issue 15 (d): `show cluster` lists the nodes sharing a sticky store and warns when
their configurations differ (SPEC §4).

Two `buddylb run` nodes on one real redis-server.  Their files differ only in VIP ports:
same decision-relevant configuration, one checksum, no warning.  Node B is then reloaded
with another sticky timeout: node A's view, its CLI text and its metrics warn."""
from __future__ import annotations

import subprocess
import sys
import urllib.request

from tests.e2e.test_redis_nodes import _backends, node_config
from tests.support.net import wait_for


def cluster(lb) -> dict:
    return lb.api("/show/cluster")["data"]


def mismatch_metric(lb) -> str:
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        lines = [ln for ln in r.read().decode().splitlines() if ln.startswith("buddylb_cluster_config_mismatch ")]
    return lines[0].split()[1] if lines else "missing"


def test_show_cluster_lists_nodes_and_warns_when_configs_differ(ports, backends, balancer, redis_server):
    _backends(backends, ports)
    a = balancer(node_config(ports, "a", redis_server.url))
    b = balancer(node_config(ports, "b", redis_server.url))
    assert wait_for(lambda: len(cluster(a)["nodes"]) == 2, 10)
    doc = cluster(a)
    assert doc["warnings"] == [] and doc["config_checksums"] == 1
    addresses = sorted(n["address"] for n in doc["nodes"])
    assert addresses == sorted([a.admin, b.admin])
    assert [n["self"] for n in doc["nodes"] if n["address"] == a.admin] == [True]
    assert all(n["version"] and n["entries"] == 0 for n in doc["nodes"])

    b.reload(node_config(ports, "b", redis_server.url).replace("  timeout 30\n", "  timeout 20\n"))
    assert wait_for(lambda: cluster(a)["config_checksums"] == 2, 10)
    doc = cluster(a)
    assert len(doc["warnings"]) == 1 and "configurations differ" in doc["warnings"][0]
    assert {n["address"] for n in doc["nodes"]} == {a.admin, b.admin}
    assert wait_for(lambda: mismatch_metric(a) == "1.0", 10)
    out = subprocess.run([sys.executable, "-m", "buddylb", "show", "cluster", "--admin", a.admin],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "2 node(s)" in out.stdout and "WARNING: configurations differ" in out.stdout
    assert b.admin in out.stdout and a.admin in out.stdout


def test_show_cluster_without_a_store_is_this_node_alone(ports, backends, balancer):
    _backends(backends, ports)
    text = node_config(ports, "a", "redis://127.0.0.1:1/0").split("\n", 1)[1]  # no sticky-store line
    a = balancer(text)
    doc = cluster(a)
    assert [n["address"] for n in doc["nodes"]] == [a.admin] and "no sticky-store" in doc["warnings"][0]
