"""Security behaviour through real sockets (issue 5 item 6)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.configs import farm, hosts, service, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import http_get


def _one_farm(ports, trusted: str = "") -> str:
    text = trusted + hosts("lnx1", "lnx2")
    text += farm("web", [("lnx1", ports["a"], None), ("lnx2", ports["b"], None)])
    text += sticky_ip("src", "web", None)
    return text + service(vip_policy("v", ports["vip"], "src", http=True))


def test_client_cannot_forge_forwarded_headers(ports, backends, balancer):
    b1 = backends.http("lnx1", "127.0.1.11", ports["a"])
    b2 = backends.http("lnx2", "127.0.1.12", ports["b"])
    balancer(_one_farm(ports))
    http_get("127.0.0.10", VIP, ports["vip"], headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
                                                         "Connection": "close, X-Forwarded-For"})
    (_, hdrs, _), = b1.requests + b2.requests
    assert hdrs[b"x-forwarded-for"] == b"127.0.0.10" and hdrs[b"x-forwarded-proto"] == b"http"


def test_source_stickiness_keys_on_peer_unless_trusted_proxy(ports, backends, balancer):
    backends.http("lnx1", "127.0.1.11", ports["a"])
    backends.http("lnx2", "127.0.1.12", ports["b"])
    lb = balancer(_one_farm(ports))
    for fake in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        http_get("127.0.0.10", VIP, ports["vip"], headers={"X-Forwarded-For": fake})
    assert [r["key"] for r in lb.api("/show/sticky-database")["data"]] == ["127.0.0.10"]


def test_trusted_proxy_chain_gives_the_client_key(ports, backends, balancer):
    b1 = backends.http("lnx1", "127.0.1.11", ports["a"])
    b2 = backends.http("lnx2", "127.0.1.12", ports["b"])
    lb = balancer(_one_farm(ports, trusted="trusted-proxy 127.0.0.0/24\n"))
    for client in ("10.0.0.1", "10.0.0.2"):
        http_get("127.0.0.10", VIP, ports["vip"], headers={"X-Forwarded-For": f"{client}, 127.0.0.9"})
    keys = sorted(r["key"] for r in lb.api("/show/sticky-database")["data"])
    assert keys == ["10.0.0.1", "10.0.0.2"]
    chains = [h[b"x-forwarded-for"] for _, h, _ in b1.requests + b2.requests]
    assert all(c.endswith(b", 127.0.0.10") for c in chains)  # appended, not replaced


def test_refuses_to_run_with_fixed_hash_seed(tmp_path, ports):
    cfg = tmp_path / "x.cfg"
    cfg.write_text(_one_farm(ports))
    env = dict(os.environ, PYTHONHASHSEED="0")
    p = subprocess.run([sys.executable, "-m", "buddylb", "run", str(cfg), "--admin", "127.0.0.1:1"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "PYTHONHASHSEED=0" in p.stderr


def test_underscore_header_fields_never_reach_the_backend(ports, backends, balancer):
    """SPEC §5 (issue 13 item 8): `X_Forwarded_For: 6.6.6.6` is dropped by default (some
    backends read `_` as `-`); `http underscores-in-headers allow` forwards it."""
    b1 = backends.http("lnx1", "127.0.1.11", ports["a"])
    b2 = backends.http("lnx2", "127.0.1.12", ports["b"])
    lb = balancer(_one_farm(ports))
    status, _, _ = http_get("127.0.0.10", VIP, ports["vip"], headers={"X_Forwarded_For": "6.6.6.6", "X-Ok": "1"})
    assert status == 200
    (_, hdrs, _), = b1.requests + b2.requests
    assert b"x_forwarded_for" not in hdrs and hdrs[b"x-forwarded-for"] == b"127.0.0.10" and hdrs[b"x-ok"] == b"1"
    assert b"6.6.6.6" not in b"".join(hdrs.values())
    lb.stop()
    balancer(_one_farm(ports, trusted="http underscores-in-headers allow\n"))
    http_get("127.0.0.10", VIP, ports["vip"], headers={"X_Forwarded_For": "6.6.6.6"})
    assert (b1.requests + b2.requests)[-1][1][b"x_forwarded_for"] == b"6.6.6.6"
