"""UDP VIPs (SPEC §2.4): a DNS-like query through `match virtual-address A udp eq P` to two
loopback DNS-like servers, stuck by source address; the same access-list rules as TCP
(protocol udp), probes fail an rserver out of the UDP farm, flows end when idle, and a
VIP's `conn-limit` caps its open flows."""
from __future__ import annotations

import socket
import struct
import threading
from collections import Counter

from tests.e2e.conftest import VIP
from tests.support.net import free_port, wait_for


class DnsLike:
    """Answers every datagram with its query id + its own name (a stand-in for a resolver)."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.queries = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            self.sock.sendto(data[:2] + b"|" + self.name, addr)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def query(source: str, port: int, qid: int, timeout: float = 2.0) -> bytes | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.sendto(struct.pack("!H", qid) + b"\x01\x00\x00\x01example\x00", (VIP, port))
        data, _ = s.recvfrom(2048)
        assert data[:2] == struct.pack("!H", qid)
        return data[3:]
    except socket.timeout:
        return None
    finally:
        s.close()


def _config(ports, extra_acl: str = "") -> str:
    return f"""\
access-list DNS line 8 extended deny udp host 127.0.0.99 any
access-list DNS line 16 extended permit udp any host {VIP} eq {ports['vip_dns']}
{extra_acl}probe tcp NEVER
  interval 1
  faildetect 1
  port {ports['closed']}
rserver host dns1
  ip address 127.0.1.11
  inservice
rserver host dns2
  ip address 127.0.1.12
  inservice
serverfarm host resolvers
  predictor roundrobin
  rserver dns1 {ports['dns1']}
    inservice
  rserver dns2 {ports['dns2']}
    inservice
sticky ip-netmask 255.255.255.255 address source by-client
  timeout 10
  serverfarm resolvers
class-map match-any DNS-VIP
  2 match virtual-address {VIP} udp eq {ports['vip_dns']}
policy-map type loadbalance first-match DNS-LB
  class class-default
    sticky-serverfarm by-client
policy-map multi-match VIPS
  class DNS-VIP
    loadbalance vip inservice
    loadbalance policy DNS-LB
interface vlan 53
  access-group input DNS
  service-policy input VIPS
"""


def test_dns_queries_through_a_udp_vip_stick_by_source(ports, balancer):
    ports["dns1"], ports["dns2"], ports["vip_dns"] = free_port("127.0.1.11"), free_port("127.0.1.12"), 0
    ports["vip_dns"] = _free_udp(VIP)
    ports["closed"] = free_port("127.0.1.11")
    servers = [DnsLike("dns1", "127.0.1.11", ports["dns1"]), DnsLike("dns2", "127.0.1.12", ports["dns2"])]
    try:
        lb = balancer(_config(ports).replace("  probe NEVER\n", ""))
        answers = {}
        for n in range(8):
            client = f"127.0.0.{20 + n}"
            got = [query(client, ports["vip_dns"], 1000 * n + i) for i in range(4)]
            assert None not in got and len(set(got)) == 1, got  # every query of a client: one resolver
            answers[client] = got[0]
        assert set(Counter(answers.values())) == {b"dns1", b"dns2"}  # clients spread over both
        # a client's flow ended (other source port each query) and it still returns to its resolver
        db = lb.api("/show/sticky-database")["data"]
        assert {e["key"] for e in db} >= {f"127.0.0.{20 + n}" for n in range(8)}
        assert query("127.0.0.99", ports["vip_dns"], 7, timeout=0.5) is None  # access-list line 8
        acl = lb.api("/show/access-list")["data"]
        assert [(ln["line"], ln["hits"]) for ln in acl["access_lists"][0]["lines"]] == [(8, 1), (16, 8 * 4)]
        assert acl["vips"][0]["vip"] == f"{VIP}:{ports['vip_dns']}/udp" and acl["vips"][0]["denied"] == 1
    finally:
        for s in servers:
            s.close()


def test_a_failed_probe_takes_the_rserver_out_of_the_udp_farm(ports, balancer):
    ports["dns1"], ports["dns2"] = free_port("127.0.1.11"), free_port("127.0.1.12")
    ports["vip_dns"] = _free_udp(VIP)
    ports["closed"] = free_port("127.0.1.11")  # nothing listens: the tcp probe fails
    servers = [DnsLike("dns1", "127.0.1.11", ports["dns1"]), DnsLike("dns2", "127.0.1.12", ports["dns2"])]
    try:
        text = _config(ports).replace(
            f"  rserver dns1 {ports['dns1']}\n", f"  rserver dns1 {ports['dns1']}\n"
        ).replace("rserver host dns1\n  ip address 127.0.1.11\n", "rserver host dns1\n  ip address 127.0.1.11\n  probe NEVER\n")
        lb = balancer(text)
        assert wait_for(lambda: any(p["state"] == "DOWN" for p in lb.api("/show/probe")["data"]), 10)
        got = {query(f"127.0.0.{40 + n}", ports["vip_dns"], n) for n in range(6)}
        assert got == {b"dns2"}
    finally:
        for s in servers:
            s.close()


def _free_udp(host: str) -> int:
    """A port free for both TCP and UDP on `host`."""
    for _ in range(50):
        port = free_port(host)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free UDP port")


def test_conn_limit_on_a_udp_vip_caps_its_flows_and_counts_the_drops(ports, balancer):
    """`conn-limit max 2` on the UDP VIP's class: two clients' flows are served; a third
    client's datagrams are dropped (and counted) while both are open, the open flows go
    on, and once they end (idle past `timeout client 1`) the third client is served."""
    from tests.e2e.test_vip_conn_limit import metric

    ports["dns1"], ports["dns2"] = free_port("127.0.1.11"), free_port("127.0.1.12")
    ports["vip_dns"] = _free_udp(VIP)
    ports["closed"] = free_port("127.0.1.11")
    servers = [DnsLike("dns1", "127.0.1.11", ports["dns1"]), DnsLike("dns2", "127.0.1.12", ports["dns2"])]
    clients: list[socket.socket] = []
    try:
        text = "timeout client 1\n" + _config(ports).replace(
            "    loadbalance policy DNS-LB\n", "    loadbalance policy DNS-LB\n    conn-limit max 2\n")
        lb = balancer(text)
        for n in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.0.0.{60 + n}", 0))
            s.settimeout(2.0)
            clients.append(s)
            assert ask(s, ports["vip_dns"], n) is not None  # flows 1 and 2
        assert query("127.0.0.62", ports["vip_dns"], 9, timeout=0.5) is None  # a third flow: dropped
        assert query("127.0.0.63", ports["vip_dns"], 10, timeout=0.5) is None
        assert ask(clients[0], ports["vip_dns"], 11) is not None  # an open flow goes on
        series = f'{{vip="{VIP}:{ports["vip_dns"]}/udp"}}'
        assert metric(lb, "buddylb_vip_conn_limit_pauses_total" + series) == 1.0
        assert metric(lb, "buddylb_vip_conn_limit_dropped_total" + series) == 2.0
        for s in clients:
            s.close()
        clients.clear()
        # the two flows end after a second of silence (swept each second); then new clients get in
        assert wait_for(lambda: query("127.0.0.64", ports["vip_dns"], 12, timeout=0.3) is not None, 6, 0.2)
        assert "conn-limit max 2 flows reached" in lb.stderr()
    finally:
        for s in clients:
            s.close()
        for srv in servers:
            srv.close()


def ask(s: socket.socket, port: int, qid: int) -> bytes | None:
    """One query from the bound socket `s` (the same client address and port: one flow)."""
    s.sendto(struct.pack("!H", qid) + b"\x01\x00\x00\x01example\x00", (VIP, port))
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        return None
    assert data[:2] == struct.pack("!H", qid)
    return data[3:]
