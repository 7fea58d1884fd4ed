"""`rserver host NAME` and its sub-mode (SPEC §2.1), plus the attribute handlers that a
farm's `rserver NAME [PORT]` entry shares with it (`weight`, `conn-limit`, `inservice`).

Owns the words of these lines only; it never checks that an rserver is used or reachable.
"""

from __future__ import annotations

from typing import Any

from buddylb.config import units
from buddylb.config.grammar import Args, Command, LineError, block, keep, one_word
from buddylb.config.model import FarmMember, Ref, Rserver
from buddylb.config.sections.notes import mapped, unused
from buddylb.config.session import ParseSession, claim_name

CONN_LIMIT_MAX = 4_000_000  # ACE's range


def parse_conn_limit(a: Args) -> tuple[int, int | None]:
    """`conn-limit max N [min M]`: returns (N, M or None); M may not exceed N."""
    cmax = a.integer("conn-limit max", 1, CONN_LIMIT_MAX)
    cmin: int | None = None
    if a.accept("min"):
        cmin = a.integer("conn-limit min", 0, CONN_LIMIT_MAX)
        if cmin > cmax:
            raise LineError(
                f"conn-limit min {cmin} is above max {cmax}; new connections are taken again "
                "below min, so write a min no larger than max"
            )
    a.end()
    return cmax, cmin


def set_weight(_s: ParseSession, obj: Rserver | FarmMember, a: Args) -> None:
    obj.weight = a.integer("weight", 1, 100)
    a.end()


def set_conn_limit(_s: ParseSession, obj: Rserver | FarmMember, a: Args) -> None:
    obj.conn_max, obj.conn_min = parse_conn_limit(a)


def set_inservice(_s: ParseSession, obj: Rserver | FarmMember, a: Args) -> None:
    a.end()
    obj.inservice = True


def set_outofservice(_s: ParseSession, obj: Rserver | FarmMember, a: Args) -> None:
    a.end()
    obj.inservice = False


# Shared by `rserver host` and a farm's `rserver NAME [PORT]` (SPEC §2.1).
SERVICE_COMMANDS: dict[str, Command] = {
    "weight": Command("weight 1-100", set_weight, once="weight"),
    "conn-limit max": Command("conn-limit max N [min M]", set_conn_limit, once="conn-limit"),
    "inservice": Command("inservice", set_inservice, once="inservice"),
    "no inservice": Command("no inservice", set_outofservice, once="inservice"),
}


def _ip_address(_s: ParseSession, rs: Rserver, a: Args) -> None:
    rs.address = a.convert("address", units.parse_address)
    rs.address_line = a.number
    a.end()


def _host_probe(_s: ParseSession, rs: Rserver, a: Args) -> None:
    """`probe P` under `rserver host`: checks this rserver in every farm it is in (ACE)."""
    name = a.name("probe name")
    a.end()
    if any(r.name == name for r in rs.probes):
        raise LineError(f'probe "{name}" is already attached to rserver "{rs.name}"; remove one of the two lines')
    rs.probes.append(Ref(name, a.number))


HOST = block(
    "rserver host",
    {
        "ip address": Command("ip address A", _ip_address, once="ip address"),
        "probe": Command("probe NAME", _host_probe, claims=one_word),
        "webhost-redirection": mapped(
            "webhost-redirection", '"webhost-redirection" (an ACE redirect server) is not done: buddylb '
            "forwards to real servers only", "unsupported"),
        "rate-limit": unused("rate-limit"),
        "fail-on-all": mapped(
            "fail-on-all", '"fail-on-all" is not done: an rserver is failed while any of its probes is failed',
            "unsupported"),
    },
    SERVICE_COMMANDS,
)


def _rserver_host(s: ParseSession, _target: Any, a: Args) -> Rserver:
    ctx = s.context(a.number)
    name = a.name("rserver name")
    if name in ctx.rservers:
        claim_name({"rserver host": ctx.rservers}, name, "rserver host")
    rs = ctx.rservers[name] = Rserver(name=name, line=a.number)
    with keep(rs):
        a.end()
    return rs


def _rserver_default(s: ParseSession, target: Any, a: Args) -> Rserver:
    """`rserver NAME`: host is ACE's default type."""
    return _rserver_host(s, target, a)


def _redirect(s: ParseSession, _target: Any, a: Args) -> None:
    s.mapping("rserver redirect", a.number, '"rserver redirect" (an ACE redirect server) is not done: buddylb '
              "forwards to real servers only; a farm of them serves nothing", "unsupported")


_REDIRECT = block(
    "rserver redirect",
    {w: Command(f"{w} ...", lambda s, t, a: None) for w in ("webhost-redirection", "inservice", "description")},
    swallow=True,
)

TOP: dict[str, Command] = {
    "rserver host": Command("rserver host NAME", _rserver_host, block=HOST),
    "rserver redirect": Command("rserver redirect NAME", _redirect, block=_REDIRECT),
    "rserver": Command("rserver [host] NAME", _rserver_default, block=HOST, claims=lambda r: len(r) == 1),
}
