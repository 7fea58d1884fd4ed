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
        if cm.match_all and len(cm.matches) > 1:
            f.error(
                cm.line,
                f'class-map "{cm.name}" is match-all with {len(cm.matches)} virtual-address lines, which no '
                f'connection can match at once; write "class-map match-any {cm.name}"',
            )
        for m in cm.matches:
            _check_one_vip(cm, m, f)


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


@dataclass(frozen=True, slots=True)
class _Claim:
    context: str
    policy: str
    cls: str
    line: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    lo: int
    hi: int

    @property
    def owner(self) -> tuple[str, str, str]:
        return (self.context, self.policy, self.cls)

    def overlaps(self, other: _Claim) -> bool:
        if self.address.version != other.address.version:
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
                    out.append(_Claim(ctx.name, pol.name, cls.name, cls.line, addr, m.port_lo, m.port_hi))
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
                    f'VIP {claim.address}:{port} of class "{claim.cls}" in policy-map "{claim.policy}"'
                    f"{in_context(ctx)} is already claimed by {_describe(clash, ctx.name)} (line {clash.line}); "
                    "give one of them another address or port",
                )
                continue
            taken.append(claim)
