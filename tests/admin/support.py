"""The shop of SPEC §2 on free loopback ports, running as a real `buddylb run`, plus a CLI runner.

Context Admin: rservers lnx1 (127.0.1.11) / lnx2 (127.0.1.12); farms `http` (blue/red,
TCP probe) and `decrypted`, joined by buddy sticky group `alpha` (stick-cart on the HTTP
VIP, stick-credit on the "HTTPS" VIP, plain HTTP here: TLS is not this suite's concern);
a non-buddy sticky group `stick-solo` (/24 source) on a third VIP.  Context Lab: one VIP
sticky to its own farm, so context filters have something to tell apart.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.support.backends import Backends
from tests.support.balancer import BalancerProcess
from tests.support.net import free_port, http_get

SRC = str(Path(__file__).resolve().parents[2] / "src")
VIP = "127.0.0.100"
LNX1, LNX2 = "127.0.1.11", "127.0.1.12"

SHOP = """\
rserver host lnx1
  ip address 127.0.1.11
  inservice
rserver host lnx2
  ip address 127.0.1.12
  {lnx2_weight}inservice

probe tcp TCP-CHECK
  interval 2
  faildetect 2
  passdetect interval 2

serverfarm host http
  predictor roundrobin
  probe TCP-CHECK
  rserver lnx1 {p_http1}
    buddy-group blue
    inservice
  rserver lnx2 {p_http2}
    buddy-group red
    inservice
serverfarm host decrypted
  rserver lnx1 {p_dec1}
    buddy-group blue
    inservice
  rserver lnx2 {p_dec2}
    buddy-group red
    inservice

sticky ip-netmask 255.255.255.255 address both stick-cart
  timeout 30
  serverfarm http
  buddy-group alpha
sticky ip-netmask 255.255.255.255 address both stick-credit
  timeout 30
  serverfarm decrypted
  buddy-group alpha
sticky ip-netmask 255.255.255.0 address source stick-solo
  timeout 10
  serverfarm http

class-map match-all http-vip
  2 match virtual-address 127.0.0.100 tcp eq {v_http}
class-map match-all https-vip
  2 match virtual-address 127.0.0.100 tcp eq {v_https}
class-map match-all solo-vip
  2 match virtual-address 127.0.0.100 tcp eq {v_solo}

policy-map type loadbalance http first-match http-sticky
  class class-default
    sticky-serverfarm stick-cart
policy-map type loadbalance http first-match https-sticky
  class class-default
    sticky-serverfarm stick-credit
policy-map type loadbalance http first-match solo-sticky
  class class-default
    sticky-serverfarm stick-solo

policy-map multi-match int
  class http-vip
    loadbalance vip inservice
    loadbalance policy http-sticky
  class https-vip
    loadbalance vip inservice
    loadbalance policy https-sticky
  class solo-vip
    loadbalance vip inservice
    loadbalance policy solo-sticky
service-policy input int

context Lab
rserver host lnx1
  ip address 127.0.1.11
  inservice
serverfarm host lab
  rserver lnx1 {p_http1}
    inservice
sticky ip-netmask 255.255.255.255 address source stick-lab
  timeout 10
  serverfarm lab
class-map match-all lab-vip
  2 match virtual-address 127.0.0.100 tcp eq {v_lab}
policy-map type loadbalance http first-match lab-sticky
  class class-default
    sticky-serverfarm stick-lab
policy-map multi-match lab-int
  class lab-vip
    loadbalance vip inservice
    loadbalance policy lab-sticky
service-policy input lab-int
"""


@dataclass
class Shop:
    lb: BalancerProcess
    backends: Backends
    ports: dict[str, int]

    def config(self, **overrides: str) -> str:
        return SHOP.format(**{"lnx2_weight": ""} | self.ports | overrides)

    def get(self, client: str, vip: str) -> str:
        """One request from `client` to VIP `http|https|solo|lab`; returns the backend's name."""
        status, _, body = http_get(client, VIP, self.ports[f"v_{vip}"])
        assert status == 200, (status, body, self.lb.stderr()[-2000:])
        return body.decode()

    def cli(self, *args: str, env: dict | None = None, admin: bool = True) -> subprocess.CompletedProcess:
        return run_cli(*args, *(("--admin", self.lb.admin) if admin else ()), env=env)

    def json(self, *args: str, env: dict | None = None):
        """`buddylb ARGS --json`: must succeed and print exactly one JSON document."""
        r = self.cli(*args, "--json", env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


def run_cli(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BUDDYLB_")}
    base["PYTHONPATH"] = SRC + os.pathsep + base.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "buddylb", *args], capture_output=True, text=True,
                          timeout=timeout, env=base | (env or {}))


def shop_ports() -> dict[str, int]:
    """Distinct free ports: bind(0) released at once may hand the same port out twice
    (two VIPs on one port made `buddylb run` refuse the file, a flaky setup error)."""
    ports: dict[str, int] = {}
    for name, host in (("v_http", VIP), ("v_https", VIP), ("v_solo", VIP), ("v_lab", VIP), ("p_http1", LNX1),
                       ("p_dec1", LNX1), ("p_http2", LNX2), ("p_dec2", LNX2)):
        port = free_port(host)
        while port in ports.values():
            port = free_port(host)
        ports[name] = port
    return ports


@contextlib.contextmanager
def running_shop(workdir: Path, args: list[str] | None = None, nofile: int | None = None) -> Iterator[Shop]:
    """Backends and a `buddylb run` of SHOP; both are gone when the block ends."""
    ports = shop_ports()
    with Backends() as bk:
        bk.http("lnx1-http", LNX1, ports["p_http1"])
        bk.http("lnx2-http", LNX2, ports["p_http2"])
        bk.http("lnx1-dec", LNX1, ports["p_dec1"])
        bk.http("lnx2-dec", LNX2, ports["p_dec2"])
        lb = BalancerProcess(SHOP.format(lnx2_weight="", **ports), workdir, args=args, nofile=nofile)
        try:
            lb.start()
            yield Shop(lb, bk, ports)
        finally:
            lb.stop()
