"""`--workers 2`: clients alternating between two VIPs keep one buddy group (issue 6 item 3)."""
from __future__ import annotations

from collections import Counter

from tests.e2e.configs import shopping_cart
from tests.e2e.conftest import VIP
from tests.support.net import http_get
from buddylb.io.workers import worker_for

CLIENTS = [f"127.0.0.{n}" for n in range(10, 50)]


def test_two_workers_keep_every_client_on_one_buddy_group(ports, backends, balancer):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(shopping_cart(ports, tls=False), "--workers", "2")
    per_worker = Counter(worker_for(c, 2) for c in CLIENTS)
    assert len(per_worker) == 2  # the test exercises both workers
    for round_ in range(3):
        for c in CLIENTS:
            a = http_get(c, VIP, ports["vip_http"])[2]
            b = http_get(c, VIP, ports["vip_https"])[2]
            assert a == b and a in (b"lnx1", b"lnx2"), (c, a, b)
    # each worker holds exactly the entries of the clients steered to it (worker 1 on its
    # own port; worker 0's port answers for the group: tests/e2e/test_workers_group.py)
    for i in (1,):
        host, port = lb.admin.rsplit(":", 1)
        lb_admin = f"{host}:{int(port) + i}"
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://{lb_admin}/show/sticky-database", timeout=5) as r:
            keys = {row["key"].split("->")[0] for row in json.loads(r.read())["data"]}
        assert keys == {c for c in CLIENTS if worker_for(c, 2) == i}


def test_a_worker_that_cannot_start_fails_the_run_loudly(tmp_path, ports):
    import socket
    import subprocess
    import sys

    from tests.support.net import free_port_run

    cfg = tmp_path / "x.cfg"
    cfg.write_text(shopping_cart(ports, tls=False))
    admin = free_port_run(2)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", admin + 1))  # worker 1's admin port is taken
    blocker.listen()
    try:
        p = subprocess.run([sys.executable, "-m", "buddylb", "run", str(cfg), "--workers", "2",
                            "--admin", f"127.0.0.1:{admin}", "--ready-file", str(tmp_path / "ready")],
                           capture_output=True, text=True, timeout=60)
    finally:
        blocker.close()
    assert p.returncode != 0
    assert "worker 1" in p.stderr and "admin API cannot listen" in p.stderr
    assert not (tmp_path / "ready").exists()
