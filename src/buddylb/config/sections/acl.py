"""`access-list NAME [line N] extended permit|deny PROTO SRC [OP P [P2]] DST [OP P [P2]]`
and the top-level `access-group input NAME` (SPEC §2.4).

Addresses are `any`, `host A` or `A MASK` (a dotted netmask, as ACE writes it); OP is
`eq`, `range`, `lt`, `gt` or `neq`, with port names (SPEC §2.2).  `remark` lines and
`ethertype` lists (bridged mode) are accepted and ignored.  Lines are ordered by their
`line N` numbers (ACE's), unnumbered lines follow in the order written, eight apart as
ACE numbers them.  It never matches a connection: `core.acl` compiles and matches.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from buddylb.config import units
from buddylb.config.grammar import Args, Command, LineError
from buddylb.config.model import AccessList, AclEntry, Ref
from buddylb.config.session import ParseSession

_PROTOCOLS = {"ip": 0, "icmp": 1, "tcp": 6, "udp": 17}
_SYNTAX = "access-list NAME [line N] extended permit|deny PROTO SRC [eq P] DST [eq|range P [P2]]"
_OPS = ("eq", "range", "lt", "gt", "neq")


def _protocol(a: Args) -> int:
    word = a.word("protocol")
    if word.lower() in _PROTOCOLS:
        return _PROTOCOLS[word.lower()]
    if word.isascii() and word.isdigit() and 0 <= int(word) <= 255:
        return int(word)
    raise LineError(f'protocol "{word}" is not ip, tcp, udp, icmp or a number 0-255; write "{_SYNTAX}"')


def _address(a: Args, what: str) -> str:
    word = a.word(f"{what} address")
    if word.lower() == "any":
        return "0.0.0.0/0"
    if word.lower() == "host":
        host = a.convert(f"{what} host", lambda t: units.parse_address(t, f"{what} host"))
        return str(ipaddress.ip_network(host))
    if word.lower() == "object-group":
        raise LineError(
            f'access-list object-groups are not supported; write the {what} as "any", "host A" or "A MASK"'
        )
    try:
        address = ipaddress.IPv4Address(word)
    except ValueError:
        raise LineError(f'{what} "{word}" is not "any", "host A" or "A MASK"; write "{_SYNTAX}"') from None
    mask = a.word(f"{what} netmask")
    try:
        prefix = units.mask_to_prefix(mask)
    except ValueError as exc:
        raise LineError(f"access-list {exc}") from None
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _ports(a: Args, what: str) -> tuple[str, int, int] | None:
    op = a.accept(*_OPS)
    if op is None:
        return None
    lo = a.port(f"{what} port")
    hi = a.port(f"{what} last port") if op == "range" else lo
    if hi < lo:
        raise LineError(f"{what} port range {lo} {hi} is empty; write the lower port first")
    return op, lo, hi


def _access_list(s: ParseSession, _target: Any, a: Args) -> None:
    ctx = s.context(a.number)
    name = a.name("access-list name")
    acl = ctx.access_lists.get(name)
    if acl is None:
        acl = ctx.access_lists[name] = AccessList(name=name, line=a.number)
    if a.peek() in ("remark", "ethertype"):
        s.ignore("unused", a.number, f"access-list {a.peek()}")
        return
    seq = acl.entries[-1].seq + 8 if acl.entries else 8
    if a.accept("line"):
        seq = a.integer("access-list line number", 1, 2_147_483_647)
        for other in acl.entries:
            if other.seq == seq:
                raise LineError(
                    f'access-list "{name}" already has line {seq} (config line {other.line}); '
                    "give every line its own number"
                )
    if a.accept("extended") is None:
        raise LineError(f'access-list "{name}" supports extended lines only; write "{_SYNTAX}"')
    action = a.keyword("action", ("permit", "deny"))
    proto = _protocol(a)
    source = _address(a, "source")
    sports = _ports(a, "source") if proto in (6, 17) else None
    destination = _address(a, "destination")
    dports = _ports(a, "destination") if proto in (6, 17) else None
    a.end()
    entry = AclEntry(
        line=a.number,
        seq=seq,
        permit=action == "permit",
        protocol=proto,
        source=source,
        destination=destination,
        source_ports=sports,
        destination_ports=dports,
        text=" ".join(a.line.words[[w.lower() for w in a.line.words].index("extended") + 1 :]),
    )
    acl.entries.append(entry)
    acl.entries.sort(key=lambda e: e.seq)


def _access_group(s: ParseSession, _target: Any, a: Args) -> None:
    ctx = s.context(a.number)
    if a.accept("output"):
        s.ignore("unused", a.number, "access-group output")
        return
    if a.accept("input") is None:
        raise LineError('write "access-group input ACCESS-LIST" (buddylb filters incoming connections)')
    name = a.name("access-list name")
    a.end()
    ctx.access_groups.append(Ref(name, a.number))


TOP: dict[str, Command] = {
    "access-list": Command(_SYNTAX, _access_list),
    "access-group": Command("access-group input ACCESS-LIST", _access_group),
}
