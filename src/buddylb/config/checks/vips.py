"""VIPs (SPEC §2.1, §2.3): the virtual-address lines that make them and the rule that
no address:port is claimed twice across the active multi-match policies of all contexts.

A VIP is one address and explicit ports (buddylb listens on them): a netmask other than
255.255.255.255 or a `tcp any` / `any` port is an error.  A match-all class-map with
several virtual-address lines could never match and is an error too.  Every class of a
multi-match policy named by `service-policy input` claims its VIPs, in service or not,
so taking a VIP in service never collides at run time.  An unspecified address
(0.0.0.0, ::) overlaps every address of its family.  It never binds a socket.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from buddylb.config import units
from buddylb.config.checks import Findings, in_context
from buddylb.config.model import ClassMap, Config, Context, Match


def check_virtual_addresses(ctx: Context, f: Findings) -> None:
    for cm in ctx.class_maps.values():
        if not cm.matches:
            example = "10 match http url /.*" if cm.http else "10 match virtual-address A tcp eq PORT"
            f.missing(
                cm.line, cm.line, f'class-map "{cm.name}" has no match lines; add one such as "{example}"'
            )
            continue
        if cm.http:
            continue
        vas = [m for m in cm.matches if m.kind == "virtual-address"]
        if cm.match_all and len(vas) > 1:
            f.error(
                cm.line,
                f'class-map "{cm.name}" is match-all with {len(vas)} virtual-address lines, which no '
                f'connection can match at once; write "class-map match-any {cm.name}"',
            )
        for m in vas:
            _check_one_vip(cm, m, f)
        sources = [m for m in cm.matches if m.kind == "source-address"]
        if sources and not cm.match_all and vas:
            f.error(
                sources[0].line,
                f'class-map "{cm.name}" is match-any with virtual-address and source-address lines: any client '
                f'of the VIP would match; write "class-map match-all {cm.name}" to admit only these sources',
            )


def _check_one_vip(cm: ClassMap, m: Match, f: Findings) -> None:
    if m.mask is not None and units.mask_to_prefix(m.mask) != 32:
        f.error(
            m.line,
            f'class-map "{cm.name}" gives virtual address {m.address} the netmask {m.mask}; a VIP is one '
            "address, remove the netmask (or write 255.255.255.255)",
        )
    if m.port_op == "any":
        f.error(
            m.line,
            f'class-map "{cm.name}" matches any port of {m.address}; buddylb listens on explicit ports, '
            'write "tcp eq PORT" or "tcp range P1 P2"',
        )


def check_udp_vips(ctx: Context, f: Findings) -> None:
    """A UDP VIP is relayed datagram by datagram: no HTTP, no TLS, IP stickiness only."""
    for ref in ctx.active_policies():
        pol = ctx.mm_policies.get(ref.name)
        for cls in pol.classes if pol is not None else []:
            cm = ctx.class_maps.get(cls.name)
            udp = [m for m in (cm.matches if cm is not None and not cm.http else [])
                   if m.kind == "virtual-address" and m.protocol == "udp"]
            lb = ctx.lb_policies.get(cls.lb_policy.name) if cls.lb_policy is not None else None
            if not udp or lb is None:
                continue
            vip = f"{udp[0].address}:{udp[0].port_lo}"
            owner = f'class "{cls.name}" of policy-map "{pol.name if pol else ""}"'
            if lb.http:
                f.error(cls.line, f'{owner} serves the UDP VIP {vip}, but its policy-map "{lb.name}" is L7 '
                        f"({lb.reason}); a UDP VIP relays datagrams: remove the HTTP features or the udp line")
            if cls.ssl_proxy is not None:
                f.error(cls.ssl_proxy.line, f"{owner} serves the UDP VIP {vip}, which cannot terminate TLS; "
                        "remove the ssl-proxy line")
            for ap in cls.accept_proxy[:1]:
                f.error(ap.line, f"{owner} serves the UDP VIP {vip}; the PROXY protocol is read on TCP "
                        "connections only: remove the accept-proxy line or the udp line")
            for lc in lb.classes:
                sg = ctx.stickies.get(lc.sticky.name) if lc.sticky is not None else None
                for ref in (lc.farm, lc.backup_farm, *((sg.farm, sg.backup_farm) if sg is not None else ())):
                    farm = ctx.farms.get(ref.name) if ref is not None else None
                    if farm is not None and farm.send_proxy and ref is not None:
                        f.error(ref.line, f'policy-map "{lb.name}" serves the UDP VIP {vip} with serverfarm '
                                f'"{farm.name}", which says send-proxy; the PROXY protocol opens TCP connections '
                                "only: remove send-proxy or use another farm for UDP")
            for lc in lb.classes:
                sg = ctx.stickies.get(lc.sticky.name) if lc.sticky is not None else None
                if sg is not None and sg.kind != "ip-netmask":
                    f.error(lc.sticky.line if lc.sticky else lc.line,
                            f'policy-map "{lb.name}" serves the UDP VIP {vip} with {sg.kind} sticky group '
                            f'"{sg.name}"; a UDP VIP sticks by address only, use a sticky ip-netmask group')


@dataclass(frozen=True, slots=True)
class _Claim:
    context: str
    policy: str
    cls: str
    line: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    lo: int
    hi: int
    protocol: str = "tcp"  # a TCP and a UDP VIP may share an address:port (DNS)

    @property
    def owner(self) -> tuple[str, str, str]:
        return (self.context, self.policy, self.cls)

    def overlaps(self, other: _Claim) -> bool:
        if self.address.version != other.address.version or self.protocol != other.protocol:
            return False
        same = self.address == other.address or self.address.is_unspecified or other.address.is_unspecified
        return same and self.lo <= other.hi and other.lo <= self.hi


def _claims(ctx: Context) -> list[_Claim]:
    out: list[_Claim] = []
    for ref in ctx.active_policies():
        pol = ctx.mm_policies.get(ref.name)
        if pol is None:
            continue
        for cls in pol.classes:
            cm = ctx.class_maps.get(cls.name)
            if cm is None or cm.http:
                continue
            for m in cm.matches:
                if m.kind == "virtual-address" and m.address and m.port_op != "any":
                    addr = ipaddress.ip_address(m.address)
                    out.append(_Claim(ctx.name, pol.name, cls.name, cls.line, addr, m.port_lo, m.port_hi,
                                      "udp" if m.protocol == "udp" else "tcp"))
    return out


def _describe(c: _Claim, ctx_of_other: str) -> str:
    where = f' in context "{c.context}"' if c.context != ctx_of_other else ""
    return f'class "{c.cls}" of policy-map "{c.policy}"{where}'


def check_vip_claims(config: Config, f: Findings) -> None:
    taken: list[_Claim] = []
    for ctx in config.contexts.values():
        for claim in _claims(ctx):
            clash = next((t for t in taken if t.overlaps(claim) and t.owner != claim.owner), None)
            if clash is not None:
                port = f"{claim.lo}" if claim.lo == claim.hi else f"{claim.lo}-{claim.hi}"
                f.error(
                    claim.line,
                    f'{"UDP " if claim.protocol == "udp" else ""}VIP {claim.address}:{port} of class "{claim.cls}" in policy-map "{claim.policy}"'
                    f"{in_context(ctx)} is already claimed by {_describe(clash, ctx.name)} (line {clash.line}); "
                    "give one of them another address or port",
                )
                continue
            taken.append(claim)
