"""Reload under load: SIGHUP a buddylb process again and again while wrk drives an L7 VIP.

Two valid configurations alternate (they differ in a weight and a comment); the load
is either keep-alive (wrk's default) or a new connection per request (`Connection:
close`).  Success: every reload was applied, wrk saw no socket error and no non-2xx
response, and buddylb logged no error.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from soak import wrk
from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.support.backends import Backends
from tests.support.balancer import BalancerProcess
from tests.support.net import free_port, wait_for

VIP = "127.0.0.100"


@dataclass
class ReloadRun:
    load: str  # "keep-alive" | "new connection per request"
    seconds: int
    reloads_sent: int
    reloads_done: int
    requests: int
    rps: float
    latency_ms: dict
    socket_errors: dict
    non_2xx: int
    log_errors: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.requests > 0 and not self.socket_errors and self.non_2xx == 0
                and self.reloads_done == self.reloads_sent and not self.log_errors)

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def config(vip_port: int, a: int, b: int, generation: int) -> str:
    """Generation 0 and 1 differ in lnx1's weight and a comment; both are valid."""
    weight = 3 if generation % 2 == 0 else 5
    text = f"! reload soak, generation {generation % 2}\n"
    text += hosts("lnx1", "lnx2", extra={"lnx1": f"weight {weight}"})
    text += farm("web", [("lnx1", a, None), ("lnx2", b, None)])
    return text + service(vip_policy("web-vip", vip_port, "web", http=True, sticky=False))


def reload_under_load(seconds: int = 6, reloads: int = 20, close: bool = False, connections: int = 20,
                      workdir: Path | None = None, delay_ms: int = 0) -> ReloadRun:
    """`delay_ms` paces each wrk connection (see `soak.wrk.start`); 0: full speed."""
    if not wrk.available():
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    tmp = tempfile.TemporaryDirectory(prefix="buddylb-reload-") if workdir is None else None
    wd = Path(tmp.name) if tmp is not None else workdir
    assert wd is not None
    vip_port, a, b = free_port(VIP), free_port("127.0.1.11"), free_port("127.0.1.12")
    try:
        with Backends() as bk:
            bk.http("lnx1", "127.0.1.11", a)
            bk.http("lnx2", "127.0.1.12", b)
            lb = BalancerProcess(config(vip_port, a, b, 0), wd, args=["--access-log", "off"])
            lb.start()
            try:
                proc = wrk.start(f"http://{VIP}:{vip_port}/", seconds, connections, close, delay_ms, wd)
                return _drive(lb, proc, vip_port, a, b, seconds, reloads, close)
            finally:
                lb.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()


def _drive(lb: BalancerProcess, proc: subprocess.Popen, vip_port: int, a: int, b: int, seconds: int, reloads: int,
           close: bool) -> ReloadRun:
    try:
        # reloads spread over the middle 80 % of the run, each confirmed before the next
        time.sleep(seconds * 0.1)
        gap = seconds * 0.8 / reloads
        sent = 0
        for n in range(1, reloads + 1):
            due = time.monotonic() + gap
            lb.reload(config(vip_port, a, b, n))
            sent += 1
            wait_for(lambda: lb.api("/info")["data"]["reloads"] >= n, max(gap * 4, 2.0), 0.02)
            time.sleep(max(0.0, due - time.monotonic()))
        report = wrk.finish(proc, seconds)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    done = lb.api("/info")["data"]["reloads"]
    errors = [ln for ln in lb.stderr().splitlines() if " ERROR " in ln or "Traceback" in ln]
    return ReloadRun("new connection per request" if close else "keep-alive", seconds, sent, done,
                     report.requests, report.rps, report.latency_ms, report.socket_errors, report.non_2xx,
                     errors)
