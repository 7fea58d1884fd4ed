"""Proxy scenarios: buddylb, HAProxy and the ceiling side by side, same backends, same wrk settings.

Owns the run of the data-path benchmark.  Two nginx backends (lnx1 on 127.0.1.11, lnx2
on 127.0.1.12) start once; then, for the L7 configurations (HTTP VIP + TLS-terminated
VIP) and again for the L4 ones (`bench.configs` keeps them equivalent), all three
balancers start at once on distinct VIP ports, each pinned to core 1 (`taskset -c 1`);
wrk and the nginx backends share core 0.  Every scenario is measured in rounds
(`bench.rounds`): in each round each balancer has one run, in turn, and the order is
reversed every other round, because this shared host drifts over minutes and a linear
drift cancels out of the ratios only when every balancer's runs sit at the same mean
time.  A run: a 1 s warm-up (every run: the other balancers ran in between), then one
wrk run (`-t1 -c50 --latency`, `-H "Connection: close"` for a new connection per
request) of `seconds / rounds` rounded up; req/s, p50, p99, errors, and the CPU the
balancer and the backends used over the run (utime+stime from /proc).  A balancer's
runs of a scenario add up to its figures there (`bench.rounds.aggregate`; each run is
kept).  A balancer that dies is recorded and left out of the later turns; the others
go on.  After the scenarios, each balancer is asked how many sticky entries it holds
(buddylb: admin `GET /show/stats-sticky`; HAProxy: `show table http` on its stats
socket) so we know persistence was on.

wrk connects from 127.0.0.1 only: one client, one sticky entry, every request after the
first takes the sticky hit path.  "Direct" runs (one run each, no rounds: no ratio is
taken between them) point wrk at the lnx1 nginx (the ceiling of the backends).  The
"ceiling" balancer is `bench.relay`, a bare uvloop relay of the same traffic, the
platform ceiling for a Python balancer; it has no HTTP/2, so h2 scenarios alternate
buddylb and HAProxy only.  CPU per request is the balancer's utime+stime over the run
divided by the requests wrk completed.  Every process started here is stopped in a
finally block.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench import configs, h2load, profile, rounds, tools, wrk
from bench.configs import BULK, HOSTS, SMALL, VIP, Ports
from bench.balancers import BALANCER_CORE, BuddyLB, Ceiling, HAProxy, first_backend
from bench.procs import Service, accepts
from bench.rounds import round_seconds

Log = Callable[[str], None]
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


# -- one run ---------------------------------------------------------------------------
class ProxyBench:
    def __init__(self, workdir: Path, artifacts: Path, programs: dict[str, str | None], seconds: int, log: Log,
                 rounds: int = rounds.ROUNDS):
        self.workdir = workdir
        self.artifacts = artifacts
        self.programs = programs
        self.seconds = seconds  # a scenario's measured time per balancer (a direct run's, whole)
        self.rounds = rounds
        self.round_s = round_seconds(seconds, rounds)
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
             varied: bool = False, idle_pids: list[int] | None = None) -> dict[str, Any]:
        """Warm-up, then one measured wrk run (h2: h2load); `after_warmup` runs between the two
        (its own counters start there, as the CPU figures do).  `idle_pids`: the balancers
        waiting for their turn on the same core; their CPU over the run says how idle they were."""
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
        cpu_i = tools.cpu_seconds(idle_pids or [])
        cpu_b, cpu_n, t0 = tools.cpu_seconds(balancer_pids), tools.cpu_seconds(self.backend_pids()), time.monotonic()
        if h2:
            r = h2load.run(url, seconds, pin, h2load_path, warmup_s=0)  # warmed up above: CPU counts only this
        else:
            r = wrk.run(url, seconds, CONNECTIONS, THREADS, close, pin, wrk_path, script)
        wall = time.monotonic() - t0
        out = r.as_dict()
        used = tools.cpu_seconds(balancer_pids) - cpu_b if balancer_pids else None
        backend = tools.cpu_seconds(self.backend_pids()) - cpu_n
        out["wall_s"] = wall  # the totals let runs add up (`bench.rounds.aggregate`)
        out["balancer_cpu_s"] = used
        out["backend_cpu_s"] = backend
        if idle_pids is not None:
            out["idle_balancers_cpu_s"] = tools.cpu_seconds(idle_pids) - cpu_i
        out["balancer_cpu_pct"] = 100 * used / wall if used is not None else None
        # CPU time of the balancer per request completed (utime+stime / requests), in µs
        out["balancer_cpu_us_per_request"] = 1e6 * used / r.requests if used is not None and r.requests else None
        out["backend_cpu_pct"] = 100 * backend / wall
        out["core_busy_pct"] = tools.busy_pct(cores0, tools.core_busy())  # every process, per core
        out["loadavg_1m"] = round(os.getloadavg()[0], 2)
        out["wrk"] = " ".join(h2load.command(url, seconds, "LOG", pin, warmup_s=0) if h2 else
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

    def start_balancer(self, kind: str, l7: bool) -> tuple[BuddyLB | HAProxy | Ceiling, Service, dict[str, Any]]:
        """One balancer with its L7 or L4 configuration on VIP ports of its own, started; a
        failure to start is recorded in the returned info, not raised."""
        ports = self.ports()
        lb: BuddyLB | HAProxy | Ceiling
        if kind == "buddylb":
            lb = BuddyLB(self.workdir, ports, l7, self.cert)
        elif kind == "ceiling":
            lb = Ceiling(self.workdir, ports, l7, self.cert)
        else:
            lb = HAProxy(self.workdir, ports, l7, self.cert, self.programs["haproxy"] or "haproxy")
        svc = lb.service()
        shutil.copy(lb.config, self.artifacts / f"{lb.dir.name}.cfg")
        info: dict[str, Any] = {"config": f"{lb.dir.name}.cfg"}
        try:
            svc.start(lb.is_ready)
            info["backend_seen"] = first_backend(ports)
        except Exception as exc:  # a failed balancer is a finding, not the end of the run
            info["error"] = f"{type(exc).__name__}: {exc}"
            self.log(f"proxy: {kind} {'L7' if l7 else 'L4'} failed: {info['error']}")
        return lb, svc, info

    def run_config(self, l7: bool, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """All balancers up with their L7 or L4 configuration, `names` measured in rounds (the
        turn order from `bench.rounds.order`), all stopped.  Returns each scenario's figures
        by balancer (aggregated over its runs) and each balancer's own record."""
        tag = "l7" if l7 else "l4"
        started: dict[str, tuple[BuddyLB | HAProxy | Ceiling, Service, dict[str, Any]]] = {}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        try:
            for kind in BALANCERS:
                started[kind] = self.start_balancer(kind, l7)
            live = [k for k, (_, svc, _) in started.items() if svc.alive()]
            pids = {k: tools.process_tree(started[k][1].pid) for k in live}
            for name in names:
                sc = SCENARIOS[name]
                kinds = [k for k in BALANCERS if not (sc.h2 and k == "ceiling")]  # bench/relay.py: HTTP/1.1 only
                for i in range(self.rounds):
                    for position, kind in enumerate(rounds.order(kinds, i), 1):
                        if kind in live:
                            idle = [p for k in live if k != kind for p in pids[k]]
                            self._turn(kind, started[kind], pids[kind], idle, sc, i + 1, position, runs, live)
            for kind in live:
                lb, _, info = started[kind]
                try:
                    info["sticky"] = lb.sticky()
                except Exception as exc:  # a finding about this balancer; the figures stand
                    info["error"] = f"{type(exc).__name__}: {exc} (asking for its sticky entries)"
                info["backend_seen_after"] = first_backend(lb.ports)
        finally:
            for kind, (lb, svc, info) in started.items():
                info["returncode"] = svc.stop()
                info["stderr"] = svc.stderr_tail(6000)
                (self.artifacts / f"{lb.dir.name}.stderr").write_text(svc.stderr_tail(200_000))
        scenarios = {name: {kind: rounds.aggregate(r) for kind, r in by.items()} for name, by in runs.items()}
        return scenarios, {f"{kind}-{tag}": info for kind, (_, _, info) in started.items()}

    def _turn(self, kind: str, balancer: tuple[Any, Service, dict[str, Any]], pids: list[int], idle: list[int],
              sc: Scenario, round_no: int, position: int, runs: dict[str, dict[str, list[dict[str, Any]]]],
              live: list[str]) -> None:
        """One balancer's run of one scenario in one round; a balancer that dies or fails is
        recorded and taken out of `live`, so the other balancers' turns go on."""
        lb, svc, info = balancer
        scheme, port = ("https", lb.ports.vip_https) if sc.tls else ("http", lb.ports.vip_http)
        self.log(f"proxy: {kind} {sc.name} round {round_no}/{self.rounds}")
        try:
            r = self.load(f"{scheme}://{VIP}:{port}{sc.path}", sc.close, self.round_s, pids, h2=sc.h2,
                          varied=sc.varied, idle_pids=idle)
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc} (during {sc.name}, round {round_no})"
            self.log(f"proxy: {kind} failed: {info['error']}")
            live.remove(kind)
            return
        r.update(round=round_no, position=position, alive_after=svc.alive())
        runs.setdefault(sc.name, {}).setdefault(kind, []).append(r)
        if not r["alive_after"]:
            self.log(f"proxy: {kind} died during {sc.name}, round {round_no}")
            live.remove(kind)

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


def settings(seconds: int, rounds: int | None = None) -> dict[str, Any]:
    """The load settings for the report; with `rounds`, how a scenario's seconds are split."""
    out = {"seconds": seconds, "warmup_s": WARMUP_S, "connections": CONNECTIONS, "threads": THREADS,
           "balancer_pin": " ".join(tools.pin(BALANCER_CORE)) or "none",
           "load_pin": " ".join(tools.pin(LOAD_CORE)) or "none"}
    if rounds:
        out |= {"rounds": rounds, "round_seconds": round_seconds(seconds, rounds), "order": list(BALANCERS)}
    return out


def run_proxy(selected: list[str], workdir: Path, artifacts: Path, programs: dict[str, str | None], seconds: int,
              profile_s: int | None, log: Log, rounds: int = rounds.ROUNDS) -> dict[str, Any]:
    """Everything selected, in a fixed order: direct, the L7 scenarios, the L4 scenarios (each
    in `rounds` rounds of the balancers in turn), then the profile."""
    bench = ProxyBench(workdir, artifacts, programs, seconds, log, rounds)
    out: dict[str, Any] = {"settings": settings(seconds, rounds), "direct": {}, "scenarios": {}, "balancers": {}}
    try:
        bench.start_backends()
        out["direct"] = bench.run_direct([n for n in DIRECT if n in selected])
        for l7 in (True, False):
            names = [n for n, s in SCENARIOS.items() if s.l7 == l7 and n in selected]
            if not names:
                continue
            scenarios, balancers = bench.run_config(l7, names)
            out["scenarios"].update(scenarios)
            out["balancers"].update(balancers)
        if profile_s:
            log("profile: buddylb under the L7 keep-alive load")
            try:
                out["profile"] = bench.profile_buddylb(profile_s)
            except Exception as exc:  # the profile is a bonus; never lose the figures for it
                out["profile"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        out["backends"] = bench.stop_backends()
    return out
