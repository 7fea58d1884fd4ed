"""A huge serverfarm (issue 13 item 6): how long `buddylb check` takes on a 20k-member
farm (the whole command, wall and CPU, median of 3; the bar is 1 s), and how long
requests stall while a running buddylb reloads it (the bar is 50 ms).

The configuration has N rservers (10.0.0.0/8, never contacted: no probe), one farm
`big` with all of them behind an L4 VIP, and a small L7 VIP whose two real backends
answer the stall probe. The probe is one client in this process sending sequential
keep-alive requests; its worst latency while reloads run is the stall. Reloads are
SIGHUP, each confirmed through `/info` before the next.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.support.backends import Backends
from tests.support.balancer import BalancerProcess
from tests.support.net import free_port, wait_for

VIP = "127.0.0.100"


def big_config(members: int, vip_port: int, big_port: int, a: int, b: int, generation: int = 0) -> str:
    out = [f"! huge farm soak, generation {generation}\n", hosts("lnx1", "lnx2")]
    out += [f"rserver host r{i}\n  ip address 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n  inservice\n"
            for i in range(members)]
    out.append(farm("web", [("lnx1", a, None), ("lnx2", b, None)]))
    out.append("serverfarm host big\n  predictor leastconns\n")
    out += [f"  rserver r{i} 8080\n    inservice\n" for i in range(members)]
    out.append(service(vip_policy("web-vip", vip_port, "web", http=True, sticky=False),
                       vip_policy("big-vip", big_port, "big", sticky=False)))
    return "".join(out)


@dataclass
class HugeFarmRun:
    members: int
    lines: int
    check_s: float  # `buddylb check` wall time, whole process (median of 3)
    check_cpu_s: float  # its CPU time, user + system (median of 3)
    load_cpu_s: float  # parse + validate + compile, CPU seconds, in-process
    reloads_sent: int = 0
    reloads_done: int = 0
    requests: int = 0
    failed: int = 0
    baseline_max_ms: float = 0.0
    baseline_p99_ms: float = 0.0  # the shared machine's own noise, to read the reload figures against
    reload_max_ms: float = 0.0
    reload_p99_ms: float = 0.0
    samples_ms: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.check_s <= 1.0 and self.reloads_done == self.reloads_sent and self.failed == 0
                and self.reload_max_ms <= 50.0)

    def as_dict(self) -> dict:
        d = asdict(self) | {"ok": self.ok}
        d.pop("samples_ms")
        return d


def measure_check(path: Path, runs: int = 3) -> tuple[float, float, float]:
    """`buddylb check` as an operator runs it, `runs` times: the median wall time and CPU
    time (user + system) of the whole process (interpreter start, imports, parse, checks,
    compile, report), then the CPU seconds of parse + validate + compile alone, in-process."""
    import resource
    import statistics

    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "buddylb", "check", str(path)], check=True, capture_output=True,
                       timeout=300)
        walls.append(time.monotonic() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    code = ("import time,sys;from pathlib import Path;from buddylb.config.parser import load_config, gc_paused;"
            "from buddylb.core.compile import compile_config;t=time.process_time();g=gc_paused();g.__enter__();"
            "compile_config(load_config(Path(sys.argv[1])));print(time.process_time()-t)")
    cpu = float(subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                               text=True, timeout=300).stdout)
    return statistics.median(walls), statistics.median(cpus), cpu


class Prober(threading.Thread):
    """Sequential keep-alive GETs; records (start time, latency s, ok) of each."""

    def __init__(self, port: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.stop = threading.Event()
        self.samples: list[tuple[float, float, bool]] = []

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        sock = None
        while time.monotonic() < end and len(self.samples) < 200_000 and not self.stop.is_set():
            t0 = time.monotonic()
            ok = False
            try:
                if sock is None:
                    sock = socket.create_connection((VIP, self.port), timeout=5)
                sock.sendall(f"GET / HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode())
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200")
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
            self.samples.append((t0, time.monotonic() - t0, ok))
            time.sleep(0.002)
        if sock is not None:
            sock.close()


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def huge_farm(members: int = 20_000, reloads: int = 5, workdir: Path | None = None) -> HugeFarmRun:
    tmp = tempfile.TemporaryDirectory(prefix="buddylb-hugefarm-") if workdir is None else None
    wd = Path(tmp.name) if tmp is not None else workdir
    assert wd is not None
    try:
        vip_port, big_port = free_port(VIP), free_port(VIP)
        a, b = free_port("127.0.1.11"), free_port("127.0.1.12")
        text = big_config(members, vip_port, big_port, a, b)
        cfg = wd / "check.cfg"
        cfg.write_text(text)
        wall, process_cpu, cpu = measure_check(cfg)
        run = HugeFarmRun(members, text.count("\n"), round(wall, 2), round(process_cpu, 2), round(cpu, 2))
        with Backends() as bk:
            bk.http("lnx1", "127.0.1.11", a)
            bk.http("lnx2", "127.0.1.12", b)
            lb = BalancerProcess(text, wd, args=["--access-log", "off"])
            lb.start(timeout=120)
            try:
                _drive(run, lb, vip_port, big_port, a, b, reloads)
            finally:
                lb.stop()
        return run
    finally:
        if tmp is not None:
            tmp.cleanup()


def _drive(run: HugeFarmRun, lb: BalancerProcess, vip_port: int, big_port: int, a: int, b: int,
           reloads: int) -> None:
    baseline_s = 2.0
    prober = Prober(vip_port, 600)
    prober.start()
    time.sleep(baseline_s)
    windows = []
    for n in range(1, reloads + 1):
        text = big_config(run.members, vip_port, big_port, a, b, n)
        t0 = time.monotonic()
        lb.reload(text)
        run.reloads_sent += 1
        wait_for(lambda: lb.api("/info")["data"]["reloads"] >= n, 120, 0.05)
        windows.append((t0, time.monotonic()))
        time.sleep(0.5)
    prober.stop.set()
    prober.join(10)
    run.reloads_done = lb.api("/info")["data"]["reloads"]
    samples = prober.samples
    run.requests = len(samples)
    run.failed = sum(1 for s in samples if not s[2])
    base = sorted(lat for t, lat, _ in samples if t < windows[0][0])
    during = sorted(lat for t, lat, _ in samples if any(w0 - lat <= t <= w1 for w0, w1 in windows))
    run.baseline_max_ms = round(max(base, default=0) * 1000, 1)
    run.baseline_p99_ms = round(base[int(len(base) * 0.99)] * 1000, 1) if base else 0.0
    run.reload_max_ms = round(max(during, default=0) * 1000, 1)
    run.reload_p99_ms = round(during[int(len(during) * 0.99)] * 1000, 1) if during else 0.0


def haproxy_check(members: int) -> str:
    if shutil.which("haproxy") is None:
        return "not run (haproxy not installed)"
    with tempfile.TemporaryDirectory(prefix="buddylb-ha-") as d:
        cfg = Path(d) / "h.cfg"
        lines = ["defaults\n    mode tcp\n    timeout connect 3s\n    timeout client 30s\n    timeout server 30s\n",
                 "frontend f\n    bind 127.0.0.1:18081\n    default_backend big\nbackend big\n"]
        lines += [f"    server r{i} 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:8080\n" for i in range(members)]
        cfg.write_text("".join(lines))
        t0 = time.monotonic()
        r = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
    return f"haproxy -c: {took:.2f} s wall ({'valid' if r.returncode == 0 else 'refused'})"


if __name__ == "__main__":
    import json

    r = huge_farm(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
    print(json.dumps(r.as_dict()))
