"""`policy-map type loadbalance [http] first-match NAME` with its `class` entries, and
`policy-map multi-match NAME` with its VIP classes (SPEC §2.1).

Owns the words of policy-map lines and one ordering rule: `class class-default` is
always the last class of a load-balance policy, wherever it is written (as on ACE).
It never resolves farm, sticky, class-map or policy names (`config.validate` does).
"""

from __future__ import annotations

from typing import Any

from buddylb.config import units
from buddylb.config.grammar import Args, Command, LineError, block, farm_ref, keep
from buddylb.config.model import (
    Context,
    LbClass,
    LbPolicy,
    MultiMatchClass,
    MultiMatchPolicy,
    PolicyType,
    ProbeHeader,
    Ref,
)
from buddylb.config.sections.notes import SERVERS_SEE_US, mapped, unused
from buddylb.config.sections.rserver import parse_conn_limit
from buddylb.config.sections.sticky import parse_farm_and_backup
from buddylb.config.session import ParseSession, claim_name

CLASS_DEFAULT = "class-default"


def _action_taken(cls: LbClass) -> None:
    if cls.farm is not None:
        raise LineError(
            f'class "{cls.name}" already sends to serverfarm "{cls.farm.name}" (line {cls.farm.line}); '
            "a class has one serverfarm or one sticky-serverfarm, remove one"
        )
    if cls.sticky is not None:
        raise LineError(
            f'class "{cls.name}" already uses sticky-serverfarm "{cls.sticky.name}" (line {cls.sticky.line}); '
            "a class has one serverfarm or one sticky-serverfarm, remove one"
        )


def _lb_serverfarm(_s: ParseSession, cls: LbClass, a: Args) -> None:
    _action_taken(cls)
    cls.farm, cls.backup_farm = parse_farm_and_backup(a)


def _lb_sticky(_s: ParseSession, cls: LbClass, a: Args) -> None:
    _action_taken(cls)
    cls.sticky = Ref(a.name("sticky group name"), a.number)
    a.end()


def _insert_http(_s: ParseSession, cls: LbClass, a: Args) -> None:
    """`insert-http NAME header-value V`: V may use ACE's %is %id %ps %pd (source and
    destination address and port), replaced per request on the L7 path."""
    name = a.token("header name")
    if a.accept("header-value") is None:
        raise LineError(f'insert-http "{name}" needs its value; write "insert-http NAME header-value V"')
    value = a.word("header value")
    a.end()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise LineError(f'insert-http "{name}" value holds a control character; remove it')
    cls.insert_http.append(ProbeHeader(name, value))


LB_CLASS = block(
    "load-balance class",
    {
        "serverfarm": Command("serverfarm F [backup F2]", _lb_serverfarm, claims=farm_ref),
        "sticky-serverfarm": Command("sticky-serverfarm STICKY-GROUP", _lb_sticky),
        "insert-http": Command("insert-http NAME header-value V", _insert_http),
        "action": mapped("action", '"action" (an ACE action-list: header rewrite, SSL URL rewrite) is not done',
                         "unsupported"),
        "ssl-proxy client": mapped(
            "ssl-proxy client", '"ssl-proxy client" (TLS to the servers) is not done: buddylb talks to servers in '
            "the clear after terminating TLS, or passes TLS through", "unsupported"),
        "set ip tos": unused("set ip tos"),
        "compress": unused("compress"),
    },
)


def _class_name(a: Args) -> str:
    if a.peek() == CLASS_DEFAULT:
        a.word("class name")
        return CLASS_DEFAULT
    return a.name("class-map name")


def _lb_class(_s: ParseSession, pol: LbPolicy, a: Args) -> LbClass:
    name = _class_name(a)
    for other in pol.classes:
        if other.name == name:
            raise LineError(
                f'class "{name}" appears twice in policy-map "{pol.name}" (first on line {other.line}); '
                "merge the two classes"
            )
    cls = LbClass(name=name, line=a.number)
    default_at = next((i for i, c in enumerate(pol.classes) if c.name == CLASS_DEFAULT), None)
    if default_at is None:
        pol.classes.append(cls)
    else:
        pol.classes.insert(default_at, cls)  # class-default stays last (ACE)
    with keep(cls):
        a.end()
    return cls


LB_POLICY = block(
    "policy-map type loadbalance",
    {"class": Command("class CLASS-MAP|class-default", _lb_class, block=LB_CLASS)},
)


def _vip_inservice(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    a.end()
    cls.vip_inservice = True


def _vip_outofservice(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    a.end()
    cls.vip_inservice = False


def _lb_policy(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    cls.lb_policy = Ref(a.name("policy-map name"), a.number)
    a.end()


def _vip_conn_limit(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    """Per-VIP limit (issue 13 item 2), written as an rserver's: at N open client
    connections the VIP stops accepting (clients wait in the kernel's backlog) until
    fewer than M (default N) are open, like HAProxy's per-frontend maxconn."""
    cls.conn_max, cls.conn_min = parse_conn_limit(a)


def _accept_proxy(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    """SPEC §2.1: peers in CIDR must open with a PROXY v1/v2 header (repeatable)."""
    cidr = a.convert("accept-proxy network", lambda t: units.parse_cidr(t, "accept-proxy"))
    a.end()
    for other in cls.accept_proxy:
        if other.name == cidr:
            raise LineError(f'accept-proxy {cidr} is already listed on line {other.line}; remove one of the two lines')
    cls.accept_proxy.append(Ref(cidr, a.number))


def _ssl_proxy(_s: ParseSession, cls: MultiMatchClass, a: Args) -> None:
    cls.ssl_proxy = Ref(a.name("ssl-proxy service name"), a.number)
    a.end()


MM_CLASS = block(
    "multi-match class",
    {
        "loadbalance vip inservice": Command("loadbalance vip inservice", _vip_inservice, once="vip"),
        "no loadbalance vip inservice": Command(
            "no loadbalance vip inservice", _vip_outofservice, once="vip"
        ),
        "loadbalance policy": Command("loadbalance policy POLICY-MAP", _lb_policy, once="policy"),
        "ssl-proxy server": Command("ssl-proxy server SSL-PROXY", _ssl_proxy, once="ssl-proxy"),
        "loadbalance vip accept-proxy": Command("loadbalance vip accept-proxy CIDR", _accept_proxy),
        "conn-limit max": Command("conn-limit max N [min M]", _vip_conn_limit, once="conn-limit"),
        "loadbalance vip icmp-reply": unused("loadbalance vip icmp-reply"),
        "loadbalance vip udp-fast-age": unused("loadbalance vip udp-fast-age"),
        "loadbalance vip advertise": mapped(
            "loadbalance vip advertise",
            '"loadbalance vip advertise" (route health injection) is ignored: buddylb announces no routes',
        ),
        "nat dynamic": mapped("nat dynamic", f'"nat dynamic": {SERVERS_SEE_US}'),
        "appl-parameter": unused("appl-parameter"),
        "connection advanced-options": unused("connection advanced-options"),
        "inspect": mapped(
            "inspect",
            '"inspect" (application inspection) is not done by buddylb; traffic is relayed as is',
            "unsupported",
        ),
    },
)


def _mm_class(_s: ParseSession, pol: MultiMatchPolicy, a: Args) -> MultiMatchClass:
    name = _class_name(a)
    if name == CLASS_DEFAULT:
        raise LineError(
            f'policy-map multi-match "{pol.name}" cannot use class-default; a VIP class names a class-map '
            'with "match virtual-address" lines, write "class CLASS-MAP"'
        )
    for other in pol.classes:
        if other.name == name:
            raise LineError(
                f'class "{name}" appears twice in policy-map "{pol.name}" (first on line {other.line}); '
                "merge the two classes"
            )
    cls = MultiMatchClass(name=name, line=a.number)
    pol.classes.append(cls)
    with keep(cls):
        a.end()
    return cls


MM_POLICY = block("policy-map multi-match", {"class": Command("class CLASS-MAP", _mm_class, block=MM_CLASS)})


def _policies(s: ParseSession, a: Args) -> tuple[Any, str]:
    ctx = s.context(a.number)
    name = a.last_name("policy-map name")
    claim_name(
        {"policy-map type loadbalance": ctx.lb_policies, "policy-map multi-match": ctx.mm_policies},
        name,
        "policy-map",
    )
    return ctx, name


def _lb_opener(s: ParseSession, _target: Any, a: Args) -> LbPolicy:
    if a.remaining() and a.line.words[-1].lower() in ("first-match", "http", "generic"):
        raise LineError(f'"{a.line.text}" is missing the policy-map name; write "{a.syntax}"')
    ctx, name = _policies(s, a)
    word = a.accept("http", "generic")
    kind: PolicyType = "http" if word == "http" else "generic" if word == "generic" else "default"
    pol = ctx.lb_policies[name] = LbPolicy(name=name, line=a.number, http=kind == "http", kind=kind)
    with keep(pol):
        if a.accept("first-match") is None:
            raise LineError(f'policy-map "{name}" needs "first-match"; write "{a.syntax}"')
        a.end()
    return pol


def _mm_opener(s: ParseSession, _target: Any, a: Args) -> MultiMatchPolicy:
    ctx, name = _policies(s, a)
    pol = ctx.mm_policies[name] = MultiMatchPolicy(name=name, line=a.number)
    with keep(pol):
        a.end()
    return pol


_HTTP_STICKY = ("http-cookie", "http-header")


def settle_policy_types(ctx: Context) -> None:
    """SPEC §2.1: what each load-balance policy became, and why (for `check`).

    No protocol word is ACE's default type: it stays an L4 relay until one of its classes
    needs HTTP (an http class-map, cookie or header stickiness, `insert-http`)."""
    for pol in ctx.lb_policies.values():
        if pol.kind == "http":
            pol.http, pol.reason = True, '"policy-map type loadbalance http"'
            continue
        if pol.kind == "generic":
            pol.http, pol.reason = False, '"policy-map type loadbalance generic"'
            continue
        pol.http, pol.reason = False, "default policy type and no class needs HTTP"
        for cls in pol.classes:
            need = _http_need(ctx, cls)
            if need:
                pol.http, pol.reason = True, f'default policy type; class "{cls.name}" {need}'
                break


def _http_need(ctx: Context, cls: LbClass) -> str:
    cm = ctx.class_maps.get(cls.name)
    if cm is not None and cm.http:
        return f'matches http class-map "{cm.name}"'
    sg = ctx.stickies.get(cls.sticky.name) if cls.sticky is not None else None
    if sg is not None and sg.kind in _HTTP_STICKY:
        return f'uses {sg.kind} sticky group "{sg.name}"'
    if cls.insert_http:
        return "inserts HTTP headers (insert-http)"
    return ""


def _policy_hint(_s: ParseSession, _target: Any, a: Args) -> None:
    raise LineError(
        f'"{a.line.text}" is not a supported policy-map; write "policy-map type loadbalance [http] first-match NAME" '
        'or "policy-map multi-match NAME"'
    )


TOP: dict[str, Command] = {
    "policy-map type loadbalance": Command(
        "policy-map type loadbalance [generic|http] first-match NAME", _lb_opener, block=LB_POLICY
    ),
    "policy-map multi-match": Command("policy-map multi-match NAME", _mm_opener, block=MM_POLICY),
    "policy-map": Command("policy-map ...", _policy_hint, hidden=True),
}
