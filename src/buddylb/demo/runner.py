"""`buddylb demo`: start everything, play the scenario, print the report, clean up.

Owns the order of things and their cleanup: a temp dir; the demo servers; the config
(both embedded examples, ports filled in) and its throwaway certificate; `buddylb run`
as a child process; the walks; the outage (`set rserver lnx1` out of service, then
back); the verdict; then, unless `--once`, waiting for Ctrl-C.  Whatever happens, the
child gets SIGTERM, the servers close and the temp dir goes (unless `--keep-dir`).
Failures are CommandError with a sentence that says what went wrong.
"""
from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType

from buddylb.demo.backends import DemoBackends
from buddylb.demo.balancer import DemoBalancer
from buddylb.demo.certs import make_cert
from buddylb.demo.config import CERT_STEM, FARMS, HOSTS, VIP, DemoPorts, render_config
from buddylb.demo.net import CLIENTS, HAND_CLIENT, free_port, preflight
from buddylb.demo.report import Report
from buddylb.demo.scenario import (AccessLogReader, Walk, affected_by, cart_steps, drive, one_server, tiers_steps,
                                   walk_ok)
from buddylb.errors import CommandError

OUTAGE = "lnx1"  # the rserver the demo takes out of service (a host: every context's lnx1)
EXIT_INTERRUPTED = 130


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


def _vip_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(VIP)
        if port not in ports:
            ports.append(port)
    return ports


def _start_servers(backends: DemoBackends) -> dict[str, int]:
    return {farm: backends.start_farm({rs: HOSTS[rs] for rs in members}) for farm, (_, members) in FARMS.items()}


def _walk_all(lb: DemoBalancer, log: AccessLogReader, ports: DemoPorts,
              report: Report) -> tuple[list[Walk], list[Walk]]:
    """Sections 1-3: every client walks both examples; then the tables."""
    clients = list(CLIENTS)
    report.section("1. shopping cart (context Admin): each client GETs its cart over HTTP, then checks out over HTTPS")
    cart = drive(log, "cart", clients, cart_steps(ports))
    report.walks(cart)
    report.section("2. tiers (context tiers): each client visits web, then app (an L4 VIP), then web again")
    tiers = drive(log, "tiers", clients, tiers_steps(ports))
    report.walks(tiers)
    report.section("3. show sticky database / show stats sticky (from the admin API)")
    report.sticky_database(lb.call("GET", ["show", "sticky-database"]))
    report.note("")
    report.stats(lb.call("GET", ["show", "stats-sticky"]))
    return cart, tiers


def _outage(lb: DemoBalancer, log: AccessLogReader, ports: DemoPorts, report: Report,
            cart: list[Walk], tiers: list[Walk]) -> tuple[list[Walk], list[Walk]]:
    """Section 4: OUTAGE out of service, its clients walk again, then it comes back."""
    report.section(f"4. re-stick: {OUTAGE} out of service")
    contexts = lb.call("POST", ["set", "rserver", OUTAGE], body={"inservice": False}).get("contexts", [])
    report.note(f'POST /set/rserver/{OUTAGE} {{"inservice": false}}: out of service in context(s) '
                f'{", ".join(contexts)}')
    hit_cart, hit_tiers = affected_by(cart, OUTAGE), affected_by(tiers, OUTAGE)
    report.note(f"sending again the {len(hit_cart) + len(hit_tiers)} walks that started on {OUTAGE}:")
    again = drive(log, "cart", [w.client for w in hit_cart], cart_steps(ports))
    again_tiers = drive(log, "tiers", [w.client for w in hit_tiers], tiers_steps(ports))
    report.note(f"context Admin: no buddy of {OUTAGE} is left in farm http, so its clients re-stick there "
                "(restick) and checkout follows them (buddy_hit)")
    report.walks(again, was=OUTAGE)
    report.note(f"context tiers: web stays within {OUTAGE}'s buddy real group blue (buddy_hit), app stays on db1")
    report.walks(again_tiers, was=OUTAGE)
    lb.call("POST", ["set", "rserver", OUTAGE], body={"inservice": True})
    report.note(f'POST /set/rserver/{OUTAGE} {{"inservice": true}}: back in service; '
                "clients that moved stay where they re-stuck")
    return again, again_tiers


def _play(lb: DemoBalancer, ports: DemoPorts, report: Report) -> bool:
    """The scenario proper; returns the verdict."""
    log = AccessLogReader(lb.access_log)
    cart, tiers = _walk_all(lb, log, ports, report)
    again, again_tiers = _outage(lb, log, ports, report, cart, tiers)
    report.section("verdict")
    carts_ok = all(one_server(w) for w in cart + again)
    tiers_ok = all(walk_ok(w) for w in tiers + again_tiers)
    moved = all(v.rserver != OUTAGE for w in again + again_tiers for v in w.visits)
    report.verdict("every client stayed on one physical server across its farms", carts_ok)
    report.verdict("every tiers client reached its web server's buddy in app and came back to it", tiers_ok)
    report.verdict(f"no client was sent to {OUTAGE} while it was out of service", moved)
    return carts_ok and tiers_ok and moved


def _wait(lb: DemoBalancer) -> None:
    """Until Ctrl-C (KeyboardInterrupt); fails if the balancer dies meanwhile."""
    while True:
        time.sleep(0.5)
        if lb.proc is not None and lb.proc.poll() is not None:
            raise CommandError(f"buddylb run exited with status {lb.proc.returncode}:\n{lb.log_tail()}", 1)


def prepare_stack(workdir: Path, backends: DemoBackends) -> tuple[DemoBalancer, DemoPorts]:
    """Servers, config and certificate in `workdir`; returns the balancer, not yet started.

    The browser and drain-preview tests start the very stack the demo shows."""
    preflight([VIP, *sorted(set(HOSTS.values())), *CLIENTS, HAND_CLIENT])
    backends.start()
    farm_ports = _start_servers(backends)
    cart, checkout, web, app = _vip_ports(4)
    ports = DemoPorts(farm_ports, cart=cart, checkout=checkout, web=web, app=app)
    make_cert(workdir, CERT_STEM, VIP)
    config = workdir / "buddylb.cfg"
    config.write_text(render_config(ports))
    admin = f"127.0.0.1:{free_port('127.0.0.1')}"
    return DemoBalancer(workdir, config, admin), ports


def _start(workdir: Path, backends: DemoBackends, report: Report, keep_dir: bool) -> tuple[DemoBalancer, DemoPorts]:
    """Servers, config, certificate, then `buddylb run`; returns it once ready."""
    lb, ports = prepare_stack(workdir, backends)
    report.header(ports)
    try:
        lb.start()
    except CommandError as exc:
        hint = "" if keep_dir else "\n(run buddylb demo --keep-dir to keep the config and the logs)"
        raise CommandError(f"{exc}{hint}", exc.exit_code) from exc
    finally:
        report.started(lb.pid, lb.admin, str(workdir))
    return lb, ports


def run_demo(once: bool = False, keep_dir: bool = False, report: Report | None = None) -> int:
    """The whole demo; returns the exit status (0: the verdict is yes)."""
    report = report or Report()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="buddylb-demo-"))
    backends = DemoBackends()
    lb: DemoBalancer | None = None
    status = EXIT_INTERRUPTED
    try:
        lb, ports = _start(workdir, backends, report, keep_dir)
        if not _play(lb, ports, report):
            raise CommandError("the demo's verdict is no: buddy sticky did not hold (see the report above)", 1)
        status = 0
        if not once:
            report.try_it(ports, lb.admin, str(lb.access_log))
            _wait(lb)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the normal way out of the interactive demo; status says if it had finished
    finally:
        if lb is not None:
            lb.stop()
        backends.close()
        kept = str(workdir) if keep_dir else None
        if not keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        if not once or kept:
            report.stopped(kept)
    return status
