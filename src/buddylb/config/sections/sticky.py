"""`sticky ip-netmask|http-cookie|http-header|ssl-session ... NAME` and its sub-mode
(SPEC §2.1).  Each key type has its own keyword table, so `cookie insert` exists only
in an http-cookie group and `v6-prefix` only in an ip-netmask group.

Owns the words of sticky lines; a bare sticky `timeout` is in minutes (ACE, SPEC §2.2).
It never checks buddy sticky group consistency (`config.validate` does, across groups).
"""

from __future__ import annotations

from typing import Any, Callable

from buddylb.config import units
from buddylb.config.grammar import SEQ, Args, Command, Handler, LineError, block, farm_ref, keep, one_word
from buddylb.config.model import Ref, StaticCookie, StickyGroup, StickyKind
from buddylb.config.session import ParseSession, claim_name


def _timeout(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    sg.timeout_s = a.time("sticky timeout", "m")
    a.end()


def _activeconns(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    a.end()
    sg.activeconns = True


def _replicate(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    # Accepted for ACE files; with a `sticky-store` every group is shared anyway (SPEC §2.1).
    a.end()
    sg.replicate = True
    sg.replicate_line = a.number


def parse_farm_and_backup(a: Args) -> tuple[Ref, Ref | None]:
    """`serverfarm F [backup F2]` (sticky groups and load-balance policy classes)."""
    farm = Ref(a.name("serverfarm name"), a.number)
    backup = None
    if a.accept("backup"):
        backup = Ref(a.name("backup serverfarm name"), a.number)
        if backup.name == farm.name:
            raise LineError(
                f'serverfarm "{farm.name}" is named as its own backup; name a different serverfarm after "backup"'
            )
    a.end()
    return farm, backup


def _serverfarm(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    sg.farm, sg.backup_farm = parse_farm_and_backup(a)


def _buddy_group(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    sg.buddy_group = a.name("buddy sticky group name")
    sg.buddy_group_line = a.number
    a.end()


def _v6_prefix(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    sg.v6_prefix = a.integer("v6-prefix", 1, 128)
    a.end()


def _cookie_insert(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    sg.cookie_insert = True
    sg.browser_expire = a.accept("browser-expire") is not None
    a.end()


COMMON: dict[str, Command] = {
    "timeout": Command("timeout T", _timeout, once="timeout", claims=one_word),
    "timeout activeconns": Command("timeout activeconns", _activeconns, once="timeout activeconns"),
    "replicate sticky": Command("replicate sticky", _replicate, once="replicate"),
    "serverfarm": Command("serverfarm F [backup F2]", _serverfarm, once="serverfarm", claims=farm_ref),
    "buddy-group": Command("buddy-group NAME", _buddy_group, once="buddy-group"),
}

IP_NETMASK = block(
    "sticky ip-netmask", COMMON, {"v6-prefix": Command("v6-prefix LEN", _v6_prefix, once="v6-prefix")}
)
def _static_cookie(_s: ParseSession, sg: StickyGroup, a: Args) -> None:
    """`static cookie-value V rserver R [PORT]`: clients presenting cookie value V go to R."""
    value = a.word("cookie value")
    if a.accept("rserver") is None:
        raise LineError(f'static cookie-value "{value}" needs its rserver; write "{a.syntax}"')
    rserver = a.name("rserver name")
    port = a.port("rserver port") if a.more() else None
    a.end()
    for other in sg.statics:
        if other.value == value:
            raise LineError(f'static cookie-value "{value}" is already mapped (line {other.line}); keep one line')
    sg.statics.append(StaticCookie(value, rserver, port, a.number))


HTTP_COOKIE = block(
    "sticky http-cookie",
    COMMON,
    {
        "cookie insert": Command("cookie insert [browser-expire]", _cookie_insert, once="cookie insert"),
        "static cookie-value": Command("static cookie-value V rserver R [PORT]", _static_cookie),
        f"{SEQ} static cookie-value": Command("SEQ static cookie-value V rserver R [PORT]", _static_cookie),
    },
)
HTTP_HEADER = block("sticky http-header", COMMON)
SSL_SESSION = block("sticky ssl-session", COMMON)


def _head_ip(sg: StickyGroup, a: Args) -> None:
    mask = a.word("netmask")
    try:
        units.mask_to_prefix(mask)
    except ValueError as exc:
        raise LineError(f"sticky ip-netmask {exc}") from None
    sg.netmask = mask
    if a.accept("address") is None:
        raise LineError(f'sticky group "{sg.name}" needs its address rule; write "{a.syntax}"')
    rule = a.keyword("address rule", ("source", "destination", "both"))
    sg.address = "source" if rule == "source" else "destination" if rule == "destination" else "both"


def _head_cookie(sg: StickyGroup, a: Args) -> None:
    sg.cookie_name = a.token("cookie name")


def _head_header(sg: StickyGroup, a: Args) -> None:
    sg.header_name = a.token("header name")


def _head_none(_sg: StickyGroup, _a: Args) -> None:
    return None


_WORDS: dict[str, int] = {"ip-netmask": 4, "http-cookie": 2, "http-header": 2, "ssl-session": 1}


def _opener(kind: StickyKind, head: Callable[[StickyGroup, Args], None]) -> Handler:
    def open_sticky(s: ParseSession, _target: Any, a: Args) -> StickyGroup:
        ctx = s.context(a.number)
        # The name ends the line (`sticky ip-netmask MASK address both NAME`).
        if 0 < a.remaining() < _WORDS[kind]:
            raise LineError(f'"{a.line.text}" is incomplete (the group name comes last); write "{a.syntax}"')
        name = a.last_name("sticky group name")
        claim_name({"sticky group": ctx.stickies}, name, "sticky group")
        sg = ctx.stickies[name] = StickyGroup(name=name, line=a.number, kind=kind)
        with keep(sg):
            head(sg, a)
            a.end()
        return sg

    return open_sticky


def _sticky_hint(_s: ParseSession, _target: Any, a: Args) -> None:
    kind = a.word("sticky type")
    raise LineError(
        f'sticky type "{kind}" is not supported; write sticky ip-netmask, http-cookie, http-header or ssl-session'
    )


TOP: dict[str, Command] = {
    "sticky ip-netmask": Command(
        "sticky ip-netmask MASK address source|destination|both NAME",
        _opener("ip-netmask", _head_ip),
        block=IP_NETMASK,
    ),
    "sticky http-cookie": Command(
        "sticky http-cookie COOKIE NAME", _opener("http-cookie", _head_cookie), block=HTTP_COOKIE
    ),
    "sticky http-header": Command(
        "sticky http-header HEADER NAME", _opener("http-header", _head_header), block=HTTP_HEADER
    ),
    "sticky ssl-session": Command(
        "sticky ssl-session NAME", _opener("ssl-session", _head_none), block=SSL_SESSION
    ),
    "sticky": Command(
        "sticky ip-netmask|http-cookie|http-header|ssl-session ... NAME", _sticky_hint, hidden=True
    ),
}
