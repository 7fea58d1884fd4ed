"""One VIP in front of one farm: the config text the io/ tests start a balancer with, and
one client of it.

Why here: four io tests (L4 close, L4 connect, VIP transport, hot path) each wrote the
same fifteen lines with a different policy type, sticky or not, one or two rservers;
one builder keeps them from drifting apart."""
from __future__ import annotations


def one_vip(vip_addr: str, vip_port: int, servers: list[tuple[str, int]], *, http: bool = False,
            sticky: bool = False, head: str = "") -> str:
    """`servers`: (address, port) of rservers web1, web2, ... in farm `web`.

    `http`: an HTTP (L7) policy, else a TCP (L4) one; `sticky`: the farm behind a
    source-address sticky group; `head`: lines placed first (timeouts)."""
    hosts = "".join(f"rserver host web{i}\n  ip address {addr}\n  inservice\n"
                    for i, (addr, _) in enumerate(servers, 1))
    members = "".join(f"  rserver web{i} {port}\n    inservice\n" for i, (_, port) in enumerate(servers, 1))
    stick = "sticky ip-netmask 255.255.255.255 address source st\n  serverfarm web\n" if sticky else ""
    kind = "http " if http else ""
    target = "sticky-serverfarm st" if sticky else "serverfarm web"
    return f"""{head}{hosts}serverfarm host web
{members}{stick}policy-map type loadbalance {kind}first-match vip-policy
  class class-default
    {target}
class-map match-all vip
  2 match virtual-address {vip_addr} tcp eq {vip_port}
policy-map multi-match int
  class vip
    loadbalance vip inservice
    loadbalance policy vip-policy
service-policy input int
"""


async def ping(loop, vip_addr: str, vip_port: int, *, eof_after: bool = False) -> bytes:
    """One client of the VIP: "ping", then every byte until the balancer's EOF (5 s per
    read at most); `eof_after`: our own EOF once theirs came (a client that half-closes
    last)."""
    import asyncio
    import socket

    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (vip_addr, vip_port))
        await loop.sock_sendall(sock, b"ping")
        data = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 4096), 5):
            data += chunk
        if eof_after:
            sock.shutdown(socket.SHUT_WR)
        return data
    finally:
        sock.close()
