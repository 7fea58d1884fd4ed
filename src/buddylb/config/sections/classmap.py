"""`class-map [match-all|match-any] NAME` (virtual-address lines: what makes a VIP) and
`class-map type http loadbalance [match-any|match-all] NAME` (http url / header /
cookie lines), SPEC §2.1.

Owns the words of class-map lines: SEQ numbers unique and ordering the lines, regexes
that compile with Python `re`.  It never decides where a class-map may be used
(`config.validate` does: http class-maps only in http policies, virtual-address ones
only in multi-match policies).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from buddylb.config import units
from buddylb.config.grammar import SEQ, Args, Command, Handler, LineError, block, keep
from buddylb.config.model import ClassMap, Match, MatchKind
from buddylb.config.session import ParseSession, claim_name

_VA_SYNTAX = "SEQ match virtual-address A [MASK] tcp|udp eq|range|any P [P2]"


def _new_match(cm: ClassMap, a: Args, kind: MatchKind) -> Match:
    try:
        seq = units.parse_int(a.line.words[0], "SEQ", 1, 65535)
    except ValueError as exc:
        raise LineError(f"{exc}") from None
    for other in cm.matches:
        if other.seq == seq:
            raise LineError(
                f'SEQ {seq} is used twice in class-map "{cm.name}" (first on line {other.line}); '
                "give every match line its own number"
            )
    return Match(seq=seq, line=a.number, kind=kind)


def _add(cm: ClassMap, m: Match) -> None:
    # SPEC §2.1: SEQ numbers order the lines.
    bisect.insort(cm.matches, m, key=lambda x: x.seq)


def _virtual_address(_s: ParseSession, cm: ClassMap, a: Args) -> None:
    m = _new_match(cm, a, "virtual-address")
    m.address = a.convert("virtual address", lambda t: units.parse_address(t, "virtual address"))
    if a.more() and a.peek() not in ("tcp", "udp", "any"):
        mask = a.word("netmask")
        if ":" in m.address:
            raise LineError(f'virtual address {m.address} is IPv6 and takes no netmask; remove "{mask}"')
        try:
            units.mask_to_prefix(mask)
        except ValueError as exc:
            raise LineError(f"virtual-address {exc}") from None
        m.mask = mask
    proto = a.keyword("protocol", ("tcp", "any", "udp"))
    m.protocol = proto  # udp: a datagram VIP (io.udp)
    op = a.keyword("port match", ("eq", "range", "any")) if proto in ("tcp", "udp") else "any"
    if op == "eq":
        m.port_op = "eq"
        m.port_lo = m.port_hi = a.port("virtual port")
    elif op == "range":
        m.port_op = "range"
        m.port_lo, m.port_hi = a.port("first port"), a.port("last port")
        if m.port_hi < m.port_lo:
            raise LineError(f"port range {m.port_lo} {m.port_hi} is empty; write the lower port first")
    a.end()
    _add(cm, m)


def _source_address(_s: ParseSession, cm: ClassMap, a: Args) -> None:
    """`SEQ match source-address A MASK`: in a match-all VIP class-map, only these clients
    may use the VIP (enforced with the access-lists, core.acl)."""
    m = _new_match(cm, a, "source-address")
    m.address = a.convert("source address", lambda t: units.parse_address(t, "source address"))
    mask = a.word("netmask") if a.more() else "255.255.255.255"
    try:
        units.mask_to_prefix(mask)
    except ValueError as exc:
        raise LineError(f"source-address {exc}") from None
    m.mask = mask
    a.end()
    _add(cm, m)


def _not_done(s: ParseSession, cm: ClassMap, a: Args) -> None:
    what = " ".join(a.line.words[1:3]).lower()
    s.mapping(f"class-map {what}", a.number,
              f'class-map "{cm.name}": "{what}" is not used by buddylb, which classifies by VIP (and, in a '
              "match-all VIP class-map, by source-address)", "unsupported")


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise LineError(
            f'regex "{text}" does not compile ({exc}); fix it (Python re syntax, matched in full)'
        ) from None
    return text


def _http_url(_s: ParseSession, cm: ClassMap, a: Args) -> None:
    m = _new_match(cm, a, "url")
    m.regex = _regex(a.word("url regex"))
    a.end()
    _add(cm, m)


def _http_named(kind: MatchKind, value_kw: str) -> Handler:
    def match_named(_s: ParseSession, cm: ClassMap, a: Args) -> None:
        m = _new_match(cm, a, kind)
        m.name = a.token(f"{kind} name")
        if a.accept(value_kw) is None:
            raise LineError(f'{kind} "{m.name}" needs a regex for its value; write "{a.syntax}"')
        m.regex = _regex(a.word(f"{kind} value regex"))
        a.end()
        _add(cm, m)

    return match_named


def _seq_hint(_s: ParseSession, cm: ClassMap, a: Args) -> None:
    raise LineError(f'"{a.line.text}" needs a sequence number first; write e.g. "10 {a.line.text}"')


def _wrong_kind(expect: str) -> Handler:
    def wrong(_s: ParseSession, cm: ClassMap, a: Args) -> None:
        raise LineError(
            f'class-map "{cm.name}" takes only "{expect}" lines; "{a.line.text}" is not one of them'
        )

    return wrong


VIRTUAL = block(
    "class-map",
    {
        f"{SEQ} match virtual-address": Command(_VA_SYNTAX, _virtual_address),
        f"{SEQ} match source-address": Command("SEQ match source-address A [MASK]", _source_address),
        f"{SEQ} match destination-address": Command("SEQ match destination-address A MASK", _not_done, hidden=True),
        f"{SEQ} match protocol": Command("SEQ match protocol P ...", _not_done, hidden=True),
        f"{SEQ} match port": Command("SEQ match port ...", _not_done, hidden=True),
        f"{SEQ} match": Command(_VA_SYNTAX, _wrong_kind("SEQ match virtual-address"), hidden=True),
        "match": Command(_VA_SYNTAX, _seq_hint, hidden=True),
    },
)
HTTP = block(
    "class-map type http loadbalance",
    {
        f"{SEQ} match http url": Command("SEQ match http url REGEX", _http_url),
        f"{SEQ} match http header": Command(
            "SEQ match http header NAME header-value REGEX", _http_named("header", "header-value")
        ),
        f"{SEQ} match http cookie": Command(
            "SEQ match http cookie NAME cookie-value REGEX", _http_named("cookie", "cookie-value")
        ),
        f"{SEQ} match": Command(
            "SEQ match http url REGEX", _wrong_kind("SEQ match http url|header|cookie"), hidden=True
        ),
        "match": Command("SEQ match http url REGEX", _seq_hint, hidden=True),
    },
)


def _opener(http: bool) -> Handler:
    def open_class_map(s: ParseSession, _target: Any, a: Args) -> ClassMap:
        ctx = s.context(a.number)
        name = a.last_name("class-map name")
        if name.lower() in ("match-all", "match-any"):
            raise LineError(f'"{a.line.text}" is missing the class-map name; write "{a.syntax}"')
        if name.lower() == "class-default":
            raise LineError(
                '"class-default" is reserved (it matches everything else); give the class-map another name'
            )
        if not http and a.peek() == "type":
            raise LineError(
                f'"{a.line.text}" is not a supported class-map type; '
                'write "class-map type http loadbalance [match-any|match-all] NAME"'
            )
        rule = a.accept("match-all", "match-any")
        claim_name({"class-map": ctx.class_maps}, name, "class-map")
        cm = ctx.class_maps[name] = ClassMap(
            name=name, line=a.number, http=http, match_all=rule != "match-any"
        )
        with keep(cm):
            a.end()
        return cm

    return open_class_map


TOP: dict[str, Command] = {
    "class-map type http loadbalance": Command(
        "class-map type http loadbalance [match-any|match-all] NAME", _opener(True), block=HTTP
    ),
    "class-map": Command("class-map [match-all|match-any] NAME", _opener(False), block=VIRTUAL),
}
