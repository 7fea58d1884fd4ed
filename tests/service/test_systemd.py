"""`buddylb run` under a service manager: real NOTIFY_SOCKET, real process (SPEC §4),
and the shipped unit file checked by systemd-analyze."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from buddylb.service.notify import monotonic_usec
from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import connect_from
from tests.support.notify import NotifySocket

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "systemd" / "buddylb.service"


def _config(ports, name: str = "v") -> str:
    text = hosts("lnx1") + farm("app", [("lnx1", ports["a"], None)])
    return text + service(vip_policy(name, ports["vip"], "app", sticky=False))


@pytest.fixture
def notify_socket(tmp_path):
    rx = NotifySocket(str(tmp_path / "notify"))
    yield rx
    rx.close()


def _serves(port: int) -> bool:
    s = connect_from("127.0.0.10", VIP, port)
    try:
        return s.makefile("rb").readline() == b"lnx1\n"
    finally:
        s.close()


def test_ready_reload_stopping_and_watchdog_from_the_main_pid(ports, backends, balancer, notify_socket):
    backends.tcp("lnx1", "127.0.1.11", ports["a"])
    env = {"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "200000"}
    lb = balancer(_config(ports), env=env)
    rx = notify_socket
    ready = rx.wait("READY")
    assert ready.pid == lb.proc.pid and "1 VIP(s) in service" in ready.fields["STATUS"]
    assert lb.api("/info")["data"]["vips"] and _serves(ports["vip"])  # READY means serving
    first_ping = rx.wait("WATCHDOG", timeout=2)
    rx.poll(0.6)
    pings = [m for m in rx.messages if "WATCHDOG" in m.fields]
    assert len(pings) >= 4 and all(m.pid == lb.proc.pid for m in pings), len(pings)  # every ~100 ms
    assert first_ping.pid == lb.proc.pid

    mark, before = len(rx.messages), monotonic_usec()
    lb.reload()
    reloading = rx.wait("RELOADING", after=mark)
    assert before <= int(reloading.fields["MONOTONIC_USEC"]) <= monotonic_usec()
    again = rx.wait("READY", after=rx.messages.index(reloading))
    assert again.pid == lb.proc.pid and "generation" in again.fields["STATUS"]

    mark = len(rx.messages)
    lb.proc.send_signal(signal.SIGTERM)
    assert rx.wait("STOPPING", after=mark).pid == lb.proc.pid
    assert lb.proc.wait(10) == 0


def test_a_refused_reload_still_ends_with_ready(ports, backends, balancer, notify_socket):
    """systemd waits for READY=1 after RELOADING=1: a bad file must not leave it waiting."""
    backends.tcp("lnx1", "127.0.1.11", ports["a"])
    lb = balancer(_config(ports), env={"NOTIFY_SOCKET": notify_socket.env_value})
    notify_socket.wait("READY")
    mark = len(notify_socket.messages)
    lb.reload("serverfarm host app\n  predictor nonsense\n")
    reloading = notify_socket.wait("RELOADING", after=mark)
    notify_socket.wait("READY", after=notify_socket.messages.index(reloading))
    assert _serves(ports["vip"])  # the old configuration still serves


def test_workers_master_alone_speaks_to_systemd(ports, backends, balancer, notify_socket):
    """With --workers the master is the main PID (NotifyAccess=main): it says READY=1 once
    every worker serves, RELOADING=1 / READY=1 around a reload of all of them, pings the
    watchdog only while every worker's loop pings it, and STOPPING=1; workers say nothing
    to systemd themselves."""
    backends.tcp("lnx1", "127.0.1.11", ports["a"])
    env = {"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "400000"}
    lb = balancer(_config(ports), "--workers", "2", env=env)
    rx = notify_socket
    ready = rx.wait("READY")
    assert ready.pid == lb.proc.pid and "2 worker(s) in service" in ready.fields["STATUS"] and _serves(ports["vip"])
    workers = [int(p) for p in Path(f"/proc/{lb.proc.pid}/task/{lb.proc.pid}/children").read_text().split()]
    assert len(workers) == 2

    rx.poll(1.0)
    assert sum("WATCHDOG" in m.fields for m in rx.messages) >= 3  # every ~200 ms while both turn
    os.kill(workers[1], signal.SIGSTOP)  # one wedged worker
    try:
        rx.poll(0.9)  # its last ping ages past WATCHDOG_USEC within this
        mark = len(rx.messages)
        rx.poll(1.0)
        assert not [m for m in rx.messages[mark:] if "WATCHDOG" in m.fields], "pinged for a stuck worker"
    finally:
        os.kill(workers[1], signal.SIGCONT)
    mark = len(rx.messages)
    rx.wait("WATCHDOG", after=mark, timeout=3)  # pings resume with the worker

    mark = len(rx.messages)
    lb.reload()
    reloading = rx.wait("RELOADING", after=mark)
    done = rx.wait("READY", after=rx.messages.index(reloading))
    assert "2 worker(s) reloaded" in done.fields["STATUS"]
    assert lb.api("/info")["data"]["reloads"] == 1  # worker 0 did reload
    lb.proc.send_signal(signal.SIGTERM)
    assert rx.wait("STOPPING").pid == lb.proc.pid
    assert lb.proc.wait(10) == 0
    rx.poll(0.2)
    assert {m.pid for m in rx.messages} == {lb.proc.pid}
    assert sum(m.fields.get("READY") == "1" for m in rx.messages) == 2  # start, reload


def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    text = UNIT.read_text()
    for word in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
        assert word in text, word
    # verify checks that ExecStart exists: point it at this checkout's buddylb
    exe = Path(sys.executable).with_name("buddylb")
    unit = tmp_path / "buddylb.service"
    unit.write_text(text.replace("/opt/buddylb/bin/buddylb", str(exe)))
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
