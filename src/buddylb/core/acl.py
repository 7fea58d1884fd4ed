"""Access lists as the ACE applies them to VIP traffic (SPEC §2.4): sans-IO.

A compiled `Acl` is a tuple of lines, each an (action, protocol, source network, source
ports, destination network, destination ports) test on integers; `Acl.check` returns the
index of the first line that matches, or None: first match wins, no match is the
implicit deny.  A `VipFilter` is what one VIP enforces: the lists of every
`access-group input` that applies to it (the context's top-level ones and those of the
interfaces whose `service-policy input` activates it).  A connection is accepted when
one of them permits it; a VIP with no list is not filtered.

Hit counts are RuntimeState's business (`AclCounters` here, keyed by list name and line
index, so they survive a reload that keeps the list).  No socket, no clock here.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Sequence

from buddylb.config import model as m

IP_ANY = 0  # `ip`: every protocol
TCP = 6
UDP = 17
_FULL = (0, 65535)


@dataclass(frozen=True, slots=True)
class AclLine:
    """One compiled `access-list` line; ports are inclusive ranges, `neq` a hole."""

    permit: bool
    protocol: int
    family: int  # 4 or 6; 0 when both sides are `any` (either family)
    src_net: int
    src_mask: int
    dst_net: int
    dst_mask: int
    src_ports: tuple[int, int]
    src_neq: bool
    dst_ports: tuple[int, int]
    dst_neq: bool
    seq: int
    line: int
    text: str

    def matches(self, protocol: int, family: int, src: int, sport: int, dst: int, dport: int) -> bool:
        if self.protocol != IP_ANY and self.protocol != protocol:
            return False
        if (self.family and family != self.family) or (src & self.src_mask) != self.src_net or (dst & self.dst_mask) != self.dst_net:
            return False
        if self.protocol in (TCP, UDP):
            return _port_ok(sport, self.src_ports, self.src_neq) and _port_ok(dport, self.dst_ports, self.dst_neq)
        return True


def _port_ok(port: int, span: tuple[int, int], neq: bool) -> bool:
    inside = span[0] <= port <= span[1]
    return not inside if neq else inside


@dataclass(frozen=True, slots=True)
class Acl:
    name: str
    lines: tuple[AclLine, ...]

    def check(self, protocol: int, family: int, src: int, sport: int, dst: int, dport: int) -> int | None:
        """Index of the first matching line, or None (the implicit deny)."""
        for i, line in enumerate(self.lines):
            if line.matches(protocol, family, src, sport, dst, dport):
                return i
        return None


@dataclass(frozen=True, slots=True)
class VipFilter:
    """The access lists one VIP enforces (any of them may permit), and the source networks
    of its match-all class-map (`match source-address`): a client must be in one of them."""

    acls: tuple[Acl, ...]
    sources: tuple[tuple[int, int, int], ...] = ()  # (family, network, mask)

    def decide(self, protocol: int, src: str, sport: int, dst: str, dport: int) -> tuple[bool, str | None, int | None]:
        """(permitted, list name, line number `seq`) of the verdict; (False, None, None)
        is the implicit deny of every list."""
        family, si = _address(src)
        dfamily, di = _address(dst)
        if family != dfamily and family == 6 and si >> 32 == 0xFFFF:  # an IPv4-mapped client
            family, si = 4, si & 0xFFFFFFFF
        if self.sources and not any(f == family and si & m == n for f, n, m in self.sources):
            return False, None, None
        if not self.acls:
            return True, None, None
        denied: tuple[str | None, int | None] = (None, None)
        for acl in self.acls:
            hit = acl.check(protocol, family, si, sport, di, dport)
            if hit is None:
                continue
            line = acl.lines[hit]
            if line.permit:
                return True, acl.name, line.seq
            if denied[0] is None:
                denied = (acl.name, line.seq)
        return False, denied[0], denied[1]


def _address(text: str) -> tuple[int, int]:
    """(4 or 6, the address as an integer): inet_pton, no ipaddress object per call."""
    if ":" in text:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0]), "big")
    return 4, int.from_bytes(socket.inet_aton(text), "big")


def _ports(spec: tuple[str, int, int] | None) -> tuple[tuple[int, int], bool]:
    if spec is None:
        return _FULL, False
    op, lo, hi = spec
    if op == "lt":
        return (0, lo - 1), False
    if op == "gt":
        return (lo + 1, 65535), False
    return (lo, hi), op == "neq"


def compile_acl(acl: m.AccessList) -> Acl:
    lines = []
    for e in acl.entries:
        src, dst = ipaddress.ip_network(e.source), ipaddress.ip_network(e.destination)
        sports, sneq = _ports(e.source_ports)
        dports, dneq = _ports(e.destination_ports)
        sides = [n.version for n in (src, dst) if n.prefixlen]
        lines.append(
            AclLine(
                permit=e.permit,
                protocol=e.protocol,
                family=sides[0] if sides else 0,
                src_net=int(src.network_address),
                src_mask=int(src.netmask),
                dst_net=int(dst.network_address),
                dst_mask=int(dst.netmask),
                src_ports=sports,
                src_neq=sneq,
                dst_ports=dports,
                dst_neq=dneq,
                seq=e.seq,
                line=e.line,
                text=e.text,
            )
        )
    return Acl(acl.name, tuple(lines))


def vip_filter(ctx: m.Context, acls: dict[str, Acl], policy: str, sources: Sequence[str] = ()) -> VipFilter | None:
    """The filter of the VIPs of multi-match `policy`: the context's top-level access
    groups, plus those of each interface whose service-policy activates `policy`, plus
    the class-map's source networks (CIDR).  None when nothing applies (SPEC §2.4:
    nothing is filtered)."""
    names: list[str] = [r.name for r in ctx.access_groups]
    for itf in ctx.interfaces:
        if any(r.name == policy for r in itf.service_policies):
            names += [r.name for r in itf.access_groups]
    chosen = tuple(acls[n] for n in dict.fromkeys(names) if n in acls)
    nets = tuple((n.version, int(n.network_address), int(n.netmask)) for n in map(ipaddress.ip_network, sources))
    return VipFilter(chosen, nets) if chosen or nets else None


@dataclass(slots=True)
class AclCounters:
    """Hit counts per (context, list, line number) and denied connections per
    (context, VIP), the second split by implicit deny (no line matched)."""

    hits: dict[tuple[str, str, int], int] = field(default_factory=dict)
    denied: dict[tuple[str, str], int] = field(default_factory=dict)
    implicit_denies: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, context: str, vip: str, permitted: bool, acl: str | None, seq: int | None) -> None:
        if acl is not None and seq is not None:
            key = (context, acl, seq)
            self.hits[key] = self.hits.get(key, 0) + 1
        if not permitted:
            k = (context, vip)
            self.denied[k] = self.denied.get(k, 0) + 1
            if acl is None:
                self.implicit_denies[k] = self.implicit_denies.get(k, 0) + 1
