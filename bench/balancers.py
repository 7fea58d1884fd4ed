"""The balancers of the proxy bench: buddylb, HAProxy and the ceiling (`bench.relay`), each
started from its configuration on VIP ports of its own and pinned to the balancer core.

Owns how each one is configured, started (a `bench.procs.Service`), told ready, and
asked for its sticky entries after the runs; `bench.proxy` owns the runs.  They live
apart so the run (rounds, loads, profile) reads as one concept.  Ports are given, never
chosen here: all three run side by side, so each needs VIP ports distinct from the others'.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench import configs, tools
from bench.configs import HOSTS, SMALL, VIP, Ports
from bench.procs import Service, accepts

BALANCER_CORE = 1


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
