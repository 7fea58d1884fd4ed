"""Proxy scenarios: buddylb and HAProxy side by side, same backends, same wrk settings.

Owns the run of the data-path benchmark.  Two nginx backends (lnx1 on 127.0.1.11, lnx2
on 127.0.1.12) start once; then each balancer runs in turn with its L7 configuration
(HTTP VIP + TLS-terminated VIP) and its L4 configuration (`bench.configs` keeps them
equivalent).  The balancer is pinned to core 1 (`taskset -c 1`); wrk and the nginx
backends share core 0.  For every scenario: a 1 s warm-up, then one wrk run
(`-t1 -c50 --latency`, `-H "Connection: close"` for a new connection per request);
req/s, p50, p99, errors, and the CPU the balancer and the backends used over the run
(utime+stime from /proc, as % of one core).  After its scenarios, each balancer is
asked how many sticky entries it holds (buddylb: admin `GET /show/stats-sticky`;
HAProxy: `show table http` on its stats socket) so we know persistence was on.

wrk connects from 127.0.0.1 only: one client, one sticky entry, every request after the
first takes the sticky hit path.  "Direct" runs point wrk at the lnx1 nginx (the
ceiling of the backends).  Each scenario also runs through `bench.relay` (the "ceiling"
balancer): a bare uvloop relay of the same traffic, the platform ceiling for a Python
balancer.  CPU per request is the balancer's utime+stime over the run divided by the
requests wrk completed.  Every process started here is stopped in a finally block.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench import configs, h2load, profile, tools, wrk
from bench.configs import BULK, HOSTS, SMALL, VIP, Ports
from bench.procs import Service, accepts

Log = Callable[[str], None]
BALANCER_CORE = 1
LOAD_CORE = 0
CONNECTIONS = 50
THREADS = 1
WARMUP_S = 1
VARIED_LUA = Path(__file__).with_name("varied.lua")
BALANCERS = ("buddylb", "haproxy", "ceiling")  # the ceiling: bench/relay.py, a bare uvloop relay


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    l7: bool  # which configuration: L7 VIPs, or plain L4 VIPs
    tls: bool  # the TLS-terminated VIP instead of the plain HTTP VIP
    path: str
    close: bool  # "Connection: close": a new connection (and handshake) per request
    direct: str | None  # the direct-to-backend run it is compared with
    unit: str = "req/s"
    h2: bool = False  # HTTP/2 by h2load (`bench.h2load`) instead of wrk; no ceiling (bench.relay has no h2)
    varied: bool = False  # a distinct request target per request (bench/varied.lua): no two heads alike


SCENARIOS = {s.name: s for s in (
    Scenario("l7-keepalive", "L7 (HTTP VIP), keep-alive", True, False, SMALL, False, "direct-keepalive"),
    Scenario("l7-varied", "L7 (HTTP VIP), keep-alive, a distinct target per request", True, False, SMALL, False,
             None, varied=True),
    Scenario("l7-close", "L7 (HTTP VIP), new connection per request", True, False, SMALL, True, "direct-close"),
    Scenario("l4-keepalive", "L4 (TCP relay), keep-alive", False, False, SMALL, False, "direct-keepalive"),
    Scenario("l4-close", "L4 (TCP relay), new connection per request", False, False, SMALL, True, "direct-close"),
    Scenario("l4-bulk", "L4 bulk transfer, 1 MiB responses, keep-alive", False, False, BULK, False, "direct-bulk",
             unit="MiB/s"),
    Scenario("tls-keepalive", "TLS-terminated VIP (L7), keep-alive", True, True, SMALL, False, None),
    Scenario("tls-handshake", "TLS-terminated VIP (L7), new handshake per request", True, True, SMALL, True, None,
             unit="handshakes/s"),
    Scenario("h2-keepalive", f"HTTP/2 on the TLS VIP (L7), {h2load.CLIENTS} connections x {h2load.STREAMS} streams",
             True, True, SMALL, False, None, h2=True),
)}
DIRECT = {
    "direct-keepalive": ("Direct to backend nginx, keep-alive", SMALL, False),
    "direct-close": ("Direct to backend nginx, new connection per request", SMALL, True),
    "direct-bulk": ("Direct to backend nginx, 1 MiB responses, keep-alive", BULK, False),
}


# -- the balancers ------------------------------------------------------------------------
class BuddyLB:
    name = "buddylb"

    def __init__(self, workdir: Path, ports: Ports, l7: bool, cert: tuple[Path, Path, Path],
                 label: str | None = None) -> None:
        self.dir = workdir / (label or f"buddylb-{'l7' if l7 else 'l4'}")
        self.dir.mkdir()
        shutil.copy(cert[0], self.dir / "shop.crt")  # ssl-proxy service SHOP-TLS: cert shop.crt, key shop.key
        shutil.copy(cert[1], self.dir / "shop.key")
        self.config = self.dir / "buddylb.cfg"
        self.config.write_text(configs.buddylb_config(ports, l7))
        self.admin = f"127.0.0.1:{tools.free_port('127.0.0.1')}"
        self.ready = self.dir / "ready"
        self.ports = ports

    def command(self, python: list[str] | None = None) -> list[str]:
        return [*(python or [sys.executable]), "-m", "buddylb", "run", str(self.config), "--admin", self.admin,
                "--access-log", "off", "--ready-file", str(self.ready)]

    def service(self, python: list[str] | None = None) -> Service:
        return Service(self.name, [*tools.pin(BALANCER_CORE), *self.command(python)], self.dir)

    def is_ready(self) -> bool:
        return self.ready.exists() and accepts(VIP, self.ports.vip_http)()

    def sticky(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.admin}/show/stats-sticky", timeout=5) as r:
            body = json.loads(r.read())
        rows = body.get("data", []) if isinstance(body, dict) else body  # {"ok": true, "data": [...]}
        keep = ("entries", "hits", "misses", "buddy_hits", "resticks", "unstored", "no_server")
        return {"entries": sum(r.get("entries", 0) for r in rows),
                "detail": {k: sum(r.get(k, 0) for r in rows) for k in keep}}


class HAProxy:
    name = "haproxy"

    def __init__(self, workdir: Path, ports: Ports, l7: bool, cert: tuple[Path, Path, Path], binary: str,
                 label: str | None = None) -> None:
        self.dir = workdir / (label or f"haproxy-{'l7' if l7 else 'l4'}")
        self.dir.mkdir()
        self.socket = self.dir / "stats.sock"
        self.config = self.dir / "haproxy.cfg"
        self.config.write_text(configs.haproxy_config(ports, l7, cert[2], self.socket))
        self.binary = binary
        self.ports = ports

    def service(self) -> Service:
        return Service(self.name, [*tools.pin(BALANCER_CORE), self.binary, "-db", "-f", str(self.config)], self.dir,
                       stop_signal=signal.SIGUSR1)  # soft stop: exit 0 once connections are done

    def is_ready(self) -> bool:
        return accepts(VIP, self.ports.vip_http)()

    def sticky(self) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(b"show table http\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode(errors="replace")
        head = text.splitlines()[0] if text else ""
        used = int(head.split("used:")[1].split()[0]) if "used:" in head else -1
        return {"entries": used, "detail": {"table": head.lstrip("# ")}}


class Ceiling:
    """The platform ceiling: `bench.relay`, a bare uvloop relay (L7 or L4) of the same
    traffic to the same backends, pinned like the balancers (issue 10 item 8)."""

    name = "ceiling"

    def __init__(self, workdir: Path, ports: Ports, l7: bool, cert: tuple[Path, Path, Path],
                 label: str | None = None) -> None:
        self.dir = workdir / (label or f"ceiling-{'l7' if l7 else 'l4'}")
        self.dir.mkdir()
        self.ports = ports
        self.l7 = l7
        self.cert = cert
        self.ready = self.dir / "ready"
        self.config = self.dir / "relay.args"
        self.config.write_text(" ".join(self.command()) + "\n")

    def command(self) -> list[str]:
        plain = ",".join(f"{h}:{self.ports.http}" for h in HOSTS.values())
        dec = ",".join(f"{h}:{self.ports.dec}" for h in HOSTS.values())
        cmd = [sys.executable, "-m", "bench.relay", "--mode", "l7" if self.l7 else "l4", "--host", VIP,
               "--http", str(self.ports.vip_http), "--https", str(self.ports.vip_https), "--servers", plain,
               "--dec-servers", dec, "--ready", str(self.ready)]
        if self.l7:
            cmd += ["--cert", str(self.cert[0]), "--key", str(self.cert[1])]
        return cmd

    def service(self) -> Service:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        return Service(self.name, [*tools.pin(BALANCER_CORE), *self.command()], self.dir, env=env)

    def is_ready(self) -> bool:
        return self.ready.exists() and accepts(VIP, self.ports.vip_http)()

    def sticky(self) -> dict[str, Any]:
        return {"entries": None, "detail": {"table": "a source-address dict (not queried)"}}


# -- one run ---------------------------------------------------------------------------
class ProxyBench:
    def __init__(self, workdir: Path, artifacts: Path, programs: dict[str, str | None], seconds: int, log: Log):
        self.workdir = workdir
        self.artifacts = artifacts
        self.programs = programs
        self.seconds = seconds
        self.log = log
        self.backends: list[Service] = []
        both = tuple(HOSTS.values())
        self.backend_ports = (tools.free_port(*both), tools.free_port(*both))
        self.cert = configs.make_cert(workdir)
        self.docroot = configs.write_docroot(workdir / "www")

    def ports(self) -> Ports:
        return Ports(*self.backend_ports, tools.free_port(VIP), tools.free_port(VIP))

    # backends
    def start_backends(self) -> None:
        ports = self.ports()
        os.chmod(self.workdir, 0o755)  # nginx workers run as an unprivileged user
        for name, address in HOSTS.items():
            (self.workdir / f"nginx-{name}").mkdir()
            cfg = self.workdir / f"nginx-{name}.conf"
            cfg.write_text(configs.nginx_config(name, address, ports, self.workdir, self.docroot))
            svc = Service(f"nginx-{name}", [*tools.pin(LOAD_CORE), self.programs["nginx"] or "nginx", "-c", str(cfg),
                                            "-p", str(self.workdir / f"nginx-{name}")], self.workdir)
            self.backends.append(svc)
            svc.start(accepts(address, ports.http))
        self.log(f"proxy: nginx backends on {', '.join(HOSTS.values())} ports {ports.http}, {ports.dec}")

    def backend_pids(self) -> list[int]:
        return [p for b in self.backends if b.alive() for p in tools.process_tree(b.pid)]

    def stop_backends(self) -> dict[str, Any]:
        out = {}
        for b in self.backends:
            out[b.name] = {"returncode": b.stop(), "stderr": b.stderr_tail(1500)}
        return out

    # load
    def load(self, url: str, close: bool, seconds: int, balancer_pids: list[int],
             after_warmup: Callable[[], Any] | None = None, h2: bool = False,
             varied: bool = False) -> dict[str, Any]:
        """Warm-up, then one measured wrk run (h2: h2load); `after_warmup` runs between the two
        (its own counters start there, as the CPU figures do)."""
        wrk_path = self.programs["wrk"] or "wrk"
        h2load_path = self.programs.get("h2load") or "h2load"
        pin = tools.pin(LOAD_CORE)
        script = str(VARIED_LUA) if varied else None
        if h2:
            h2load.run(url, WARMUP_S, pin, h2load_path)
        else:
            wrk.run(url, WARMUP_S, CONNECTIONS, THREADS, close, pin, wrk_path, script)
        if after_warmup is not None:
            after_warmup()
        cores0 = tools.core_busy()
        cpu_b, cpu_n, t0 = tools.cpu_seconds(balancer_pids), tools.cpu_seconds(self.backend_pids()), time.monotonic()
        if h2:
            r = h2load.run(url, seconds, pin, h2load_path)
        else:
            r = wrk.run(url, seconds, CONNECTIONS, THREADS, close, pin, wrk_path, script)
        wall = time.monotonic() - t0
        out = r.as_dict()
        used = tools.cpu_seconds(balancer_pids) - cpu_b if balancer_pids else None
        out["balancer_cpu_pct"] = 100 * used / wall if used is not None else None
        # CPU time of the balancer per request completed (utime+stime / requests), in µs
        out["balancer_cpu_us_per_request"] = 1e6 * used / r.requests if used is not None and r.requests else None
        out["backend_cpu_pct"] = 100 * (tools.cpu_seconds(self.backend_pids()) - cpu_n) / wall
        out["core_busy_pct"] = tools.busy_pct(cores0, tools.core_busy())  # every process, per core
        out["loadavg_1m"] = round(os.getloadavg()[0], 2)
        out["wrk"] = " ".join(h2load.command(url, seconds, "LOG", pin) if h2 else
                              wrk.command(url, seconds, CONNECTIONS, THREADS, close, pin, script))
        return out

    def run_direct(self, names: list[str]) -> dict[str, Any]:
        out = {}
        port = self.backend_ports[0]
        for name in names:
            title, path, close = DIRECT[name]
            self.log(f"proxy: {name}")
            out[name] = self.load(f"http://{HOSTS['lnx1']}:{port}{path}", close, self.seconds, [])
            out[name]["title"] = title
        return out

    def run_balancer(self, kind: str, l7: bool, names: list[str]) -> dict[str, Any]:
        """Start one balancer with its L7 or L4 configuration, run `names`, stop it."""
        ports = self.ports()
        if kind == "buddylb":
            lb: BuddyLB | HAProxy | Ceiling = BuddyLB(self.workdir, ports, l7, self.cert)
            svc = lb.service()
        elif kind == "ceiling":
            lb = Ceiling(self.workdir, ports, l7, self.cert)
            svc = lb.service()
        else:
            lb = HAProxy(self.workdir, ports, l7, self.cert, self.programs["haproxy"] or "haproxy")
            svc = lb.service()
        shutil.copy(lb.config, self.artifacts / f"{lb.dir.name}.cfg")
        result: dict[str, Any] = {"scenarios": {}, "config": f"{lb.dir.name}.cfg"}
        try:
            svc.start(lb.is_ready)
            result["backend_seen"] = first_backend(ports)
            pids = tools.process_tree(svc.pid)
            for name in names:
                sc = SCENARIOS[name]
                if sc.h2 and kind == "ceiling":
                    continue  # bench/relay.py speaks HTTP/1.1 only
                scheme, port = ("https", ports.vip_https) if sc.tls else ("http", ports.vip_http)
                self.log(f"proxy: {kind} {name}")
                r = self.load(f"{scheme}://{VIP}:{port}{sc.path}", sc.close, self.seconds, pids, h2=sc.h2,
                              varied=sc.varied)
                r["alive_after"] = svc.alive()
                result["scenarios"][name] = r
                if not svc.alive():
                    self.log(f"proxy: {kind} died during {name}")
                    break
            if svc.alive():
                result["sticky"] = lb.sticky()
                result["backend_seen_after"] = first_backend(ports)
        except Exception as exc:  # a failed balancer is a finding, not the end of the run
            result["error"] = f"{type(exc).__name__}: {exc}"
            self.log(f"proxy: {kind} {'L7' if l7 else 'L4'} failed: {result['error']}")
        finally:
            result["returncode"] = svc.stop()
            result["stderr"] = svc.stderr_tail(6000)
            (self.artifacts / f"{lb.dir.name}.stderr").write_text(svc.stderr_tail(200_000))
        return result

    # profile
    def profile_buddylb(self, seconds: int) -> dict[str, Any]:
        """py-spy on buddylb (L7 config) under the L7 keep-alive load; cProfile if py-spy cannot attach."""
        binary = profile.pyspy_binary(self.log)
        if binary is not None:
            out = self._pyspy(binary, seconds)
            if out.get("samples"):
                return out
            self.log(f"profile: py-spy gave nothing ({out.get('error', '')}); falling back to cProfile")
        return self._cprofile(seconds)

    def _under_load(self, svc: Service, ready: Callable[[], bool], ports: Ports, seconds: int,
                    during: Callable[[], Any]) -> Any:
        svc.start(ready)
        url = f"http://{VIP}:{ports.vip_http}{SMALL}"
        cmd = wrk.command(url, seconds + 2, CONNECTIONS, THREADS, False, tools.pin(LOAD_CORE))
        cmd[cmd.index("wrk")] = self.programs["wrk"] or "wrk"
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(1)
            return during(), wrk.parse(load.communicate(timeout=seconds + wrk.GRACE_S)[0].decode())
        finally:
            if load.poll() is None:
                os.killpg(load.pid, signal.SIGKILL)
                load.wait()
            svc.stop()

    def _pyspy(self, binary: str, seconds: int) -> dict[str, Any]:
        lb = BuddyLB(self.workdir, self.ports(), True, self.cert, label="buddylb-pyspy")
        svc = lb.service()
        raw = self.artifacts / "profile-buddylb-l7.collapsed"
        spy, load = self._under_load(svc, lb.is_ready, lb.ports, seconds, lambda: profile.record_pyspy(
            binary, svc.pid, seconds, raw, tools.pin(LOAD_CORE)))
        if spy.returncode != 0 or not raw.exists():
            return {"error": spy.stderr.strip()[-800:]}
        return {"tool": "py-spy record --format raw --function --nonblocking --rate 200", "seconds": seconds,
                "file": raw.name, "requests_per_s": load.requests_per_s, **profile.collapsed_rows(raw)}

    def _cprofile(self, seconds: int) -> dict[str, Any]:
        lb = BuddyLB(self.workdir, self.ports(), True, self.cert, label="buddylb-cprofile")
        out = self.artifacts / "profile-buddylb-l7.pstats"
        svc = lb.service([sys.executable, "-m", "cProfile", "-o", str(out)])
        _, load = self._under_load(svc, lb.is_ready, lb.ports, seconds, lambda: time.sleep(seconds))
        if not out.exists():
            return {"error": "cProfile wrote no output:\n" + svc.stderr_tail(800)}
        return {"tool": "python -m cProfile (own time)", "seconds": seconds, "file": out.name,
                "requests_per_s": load.requests_per_s, "cprofile": profile.cprofile_file_rows(out)}


def first_backend(ports: Ports) -> str | None:
    """Which backend answers one request through the HTTP VIP (nginx's X-Backend header)."""
    try:
        conn = http.client.HTTPConnection(VIP, ports.vip_http, timeout=5)
        conn.request("GET", SMALL)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return f"{resp.status} {resp.getheader('X-Backend')}"
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {exc}"


def settings(seconds: int) -> dict[str, Any]:
    return {"seconds": seconds, "warmup_s": WARMUP_S, "connections": CONNECTIONS, "threads": THREADS,
            "balancer_pin": " ".join(tools.pin(BALANCER_CORE)) or "none",
            "load_pin": " ".join(tools.pin(LOAD_CORE)) or "none"}


def run_proxy(selected: list[str], workdir: Path, artifacts: Path, programs: dict[str, str | None], seconds: int,
              profile_s: int | None, log: Log) -> dict[str, Any]:
    """Everything selected, in a fixed order: direct, L7 pair, L4 pair, then the profile."""
    bench = ProxyBench(workdir, artifacts, programs, seconds, log)
    out: dict[str, Any] = {"settings": settings(seconds), "direct": {}, "scenarios": {}, "balancers": {}}
    try:
        bench.start_backends()
        out["direct"] = bench.run_direct([n for n in DIRECT if n in selected])
        for l7 in (True, False):
            names = [n for n, s in SCENARIOS.items() if s.l7 == l7 and n in selected]
            if not names:
                continue
            for kind in BALANCERS:
                res = bench.run_balancer(kind, l7, names)
                for name, r in res.pop("scenarios").items():
                    out["scenarios"].setdefault(name, {})[kind] = r
                out["balancers"][f"{kind}-{'l7' if l7 else 'l4'}"] = res
        if profile_s:
            log("profile: buddylb under the L7 keep-alive load")
            try:
                out["profile"] = bench.profile_buddylb(profile_s)
            except Exception as exc:  # the profile is a bonus; never lose the figures for it
                out["profile"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        out["backends"] = bench.stop_backends()
    return out
