"""Process lifecycle: access log formats, SIGTERM drain, start-up errors (issue 3 items 1, 6, 7)."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from tests.e2e.configs import farm, hosts, service, shopping_cart, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import connect_from, http_exchange, http_get, wait_for


def _l4(ports, drain: str = "") -> str:
    text = drain + hosts("lnx1") + farm("app", [("lnx1", ports["a"], None)])
    return text + service(vip_policy("v", ports["vip"], "app", sticky=False))


def _cart(backends, ports):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])


def test_access_log_text_names_every_decision(ports, backends, balancer):
    _cart(backends, ports)
    lb = balancer(shopping_cart(ports, tls=False))
    http_get("127.0.0.10", VIP, ports["vip_http"], "/cart")
    http_get("127.0.0.10", VIP, ports["vip_https"], "/pay")
    assert wait_for(lambda: lb.log.exists() and lb.log.read_text().count("\n") >= 2, 5)
    first, second = lb.log.read_text().splitlines()[:2]
    for field in ("127.0.0.10", "vip=127.0.0.100:", "class=class-default", "farm=http", "outcome=new", "status=200",
                  '"GET /cart"', "dur="):
        assert field in first, (field, first)
    assert "farm=decrypted" in second and "outcome=buddy_hit" in second and "rserver=lnx" in second


def test_access_log_json(ports, backends, balancer):
    _cart(backends, ports)
    lb = balancer(shopping_cart(ports, tls=False), "--access-log-format", "json")
    request, reply = http_exchange("127.0.0.11", VIP, ports["vip_http"])
    assert wait_for(lambda: lb.log.exists() and lb.log.read_text().strip(), 5)
    record = json.loads(lb.log.read_text().splitlines()[0])
    assert record["client"] == "127.0.0.11" and record["outcome"] == "new" and record["status"] == 200
    assert record["farm"] == "http" and record["rserver"].startswith("lnx")
    assert reply.split(b"\r\n\r\n", 1)[1] in (b"lnx1", b"lnx2")
    assert (record["bytes_in"], record["bytes_out"]) == (len(request), len(reply))  # heads count (issue 14)


def test_sigterm_stops_accepting_and_lets_open_connections_finish(ports, backends, balancer):
    backends.tcp("lnx1", "127.0.1.11", ports["a"])
    lb = balancer(_l4(ports))
    held = connect_from("127.0.0.10", VIP, ports["vip"])
    try:
        assert held.makefile("rb").readline() == b"lnx1\n"
        lb.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:  # no new connections
            fresh = connect_from("127.0.0.11", VIP, ports["vip"], timeout=2)
            fresh.close()
            raise AssertionError("a new connection was accepted while draining")
        except OSError:
            pass
        held.sendall(b"still here")
        assert held.recv(100) == b"still here"  # the open one is served
        assert lb.proc.poll() is None
    finally:
        held.close()
    assert lb.proc.wait(10) == 0  # the last connection closed: it exits at once, 0


def test_drain_deadline_closes_what_is_left(ports, backends, balancer):
    backends.tcp("lnx1", "127.0.1.11", ports["a"])
    lb = balancer(_l4(ports, drain="timeout drain 1\n"))
    held = connect_from("127.0.0.10", VIP, ports["vip"])
    try:
        held.makefile("rb").readline()
        started = time.monotonic()
        lb.proc.send_signal(signal.SIGTERM)
        assert lb.proc.wait(10) == 0
        assert 0.8 < time.monotonic() - started < 5
    finally:
        held.close()


def test_start_up_error_names_the_vip_and_line(tmp_path, ports):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((VIP, ports["vip"]))
    blocker.listen()
    cfg = tmp_path / "x.cfg"
    cfg.write_text(_l4(ports))
    try:
        p = subprocess.run([sys.executable, "-m", "buddylb", "run", str(cfg), "--admin", f"127.0.0.1:{ports['adm']}"],
                           capture_output=True, text=True, timeout=30)
    finally:
        blocker.close()
    assert p.returncode != 0
    line = next(i for i, ln in enumerate(cfg.read_text().splitlines(), 1) if "virtual-address" in ln)
    assert f"x.cfg:{line}: VIP {VIP}:{ports['vip']}" in p.stderr and "address already in use" in p.stderr


def test_check_reports_every_error_with_file_and_line(tmp_path, ports):
    cfg = tmp_path / "bad.cfg"
    text = _l4(ports).replace("serverfarm app\n", "serverfarm nowhere\n") + "rserver host lnx1\n  ip address 127.0.1.11\n"
    cfg.write_text(text)
    p = subprocess.run([sys.executable, "-m", "buddylb", "check", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "bad.cfg:" in p.stderr and "nowhere" in p.stderr and 'rserver host "lnx1"' in p.stderr
    assert len([ln for ln in p.stderr.splitlines() if ": error:" in ln]) == 2
