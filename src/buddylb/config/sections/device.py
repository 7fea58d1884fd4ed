"""Device and context-administration commands of an ACE file (SPEC §2.3, §2.4), and
`interface vlan|bvi N`, whose `service-policy input` and `access-group input` lines
take effect while the rest is ignored.

An Admin context's `show running-config` carries `logging`, `hostname`, `snmp-server`,
`username`, `ft ...`, `ip route`, management class-maps and policy-maps and so on.
buddylb accepts them, records each in the session's ignore list (one warning per
category at the end, SPEC §2.3), and walks their sub-modes with a vocabulary of first
words so that a flat paste reads them as the ACE did (`Block.swallow`: an indented line
under one of them is its own whatever it says).  It never acts on these lines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from buddylb.config.grammar import Args, Block, Command, Handler, block
from buddylb.config.model import Interface, Ref
from buddylb.config.session import ParseSession


@dataclass(frozen=True, slots=True)
class DeviceMode:
    """The sub-mode of an ignored device command: its lines are recorded under the
    opener's phrase, so the summary says `"ft group" (lines 50, 51, ...)`."""

    phrase: str
    category: str = "device"


def _ignored(category: str, words: int = 2) -> Handler:
    """A handler that records the line (its first `words` words, or the phrase of the
    device command whose sub-mode it is in) in `category`; an opener returns its mode."""

    def ignore(s: ParseSession, target: Any, a: Args) -> Any:
        if isinstance(target, DeviceMode):
            s.ignore(target.category, a.number, target.phrase)
            return target
        phrase = " ".join(w.lower() for w in a.line.words[:words])
        s.ignore(category, a.number, phrase)
        return DeviceMode(phrase, category)

    return ignore


def _vocabulary(title: str, words: str, category: str = "device", **nested: Block) -> Block:
    """A device sub-mode: each first word of `words` is a command ignored in `category`;
    `nested` maps a first word to the sub-mode it opens."""
    table = {w: Command(f"{w} ...", _ignored(category, 1)) for w in words.split()}
    for word, sub in nested.items():
        table[word.rstrip("_").replace("_", "-")] = Command(f"{word} ...", _ignored(category, 1), block=sub)
    return block(title, table, swallow=True)


def _management(s: ParseSession, target: Any, a: Args) -> Any:
    """`policy-map type management ... NAME`: remembered, so that the interface line
    `service-policy input NAME` that activates it is not taken for a missing VIP policy."""
    s.context(a.number).management_policies.add(a.line.words[-1])
    return _ignored("device", 3)(s, target, a)


def _numbered(s: ParseSession, target: Any, a: Args) -> Any:
    return _ignored("device")(s, target, a)


def _interface(s: ParseSession, _target: Any, a: Args) -> Interface:
    ctx = s.context(a.number)
    itf = Interface(name=" ".join(a.line.words[1:3]).lower(), line=a.number)
    ctx.interfaces.append(itf)
    return itf


def _itf_service_policy(s: ParseSession, itf: Interface, a: Args) -> None:
    name = a.name("policy-map name")
    a.end()
    itf.service_policies.append(Ref(name, a.number))


def _itf_access_group(s: ParseSession, itf: Interface, a: Args) -> None:
    name = a.name("access-list name")
    a.end()
    itf.access_groups.append(Ref(name, a.number))


_INTERFACE_WORDS = (
    "ip ipv6 description no shutdown alias peer mtu nat-pool fragment bridge-group mac-address arp "
    "syn-cookie access-group service-policy normalization icmp-guard udp mac-sticky remove-eom "
    "fragment ttl fast-path"
)
INTERFACE = block(
    "interface vlan",
    {
        "service-policy input": Command("service-policy input POLICY-MAP", _itf_service_policy),
        "access-group input": Command("access-group input ACCESS-LIST", _itf_access_group),
    },
    {w: Command(f"{w} ...", _ignored("interface", 2 if w in ("ip", "no", "peer") else 1)) for w in _INTERFACE_WORDS.split()},
    swallow=True,
)
_PORT = _vocabulary(
    "interface",
    "switchport channel-group speed duplex no shutdown description carrier-delay qos ft-port ip",
)
_FT = _vocabulary(
    "ft",
    "ip peer no shutdown heartbeat ft-interface query-interface priority associate-context inservice "
    "preempt track-host track-interface probe description",
)
_MGMT_CLASS_MAP = block(
    "class-map type management",
    {"#": Command("SEQ match ...", _ignored("device")), "match": Command("match ...", _ignored("device")),
     "description": Command("description ...", _ignored("device"))},
    swallow=True,
)
_MGMT_POLICY = _vocabulary("policy-map type management", "description", class_=_vocabulary("class", "permit deny"))

TOP: dict[str, Command] = {
    "interface vlan": Command("interface vlan N", _interface, block=INTERFACE),
    "interface bvi": Command("interface bvi N", _interface, block=INTERFACE),
    "interface": Command("interface ...", _ignored("device"), block=_PORT),
    "ft": Command("ft ...", _ignored("device")),
    "ft interface": Command("ft interface ...", _ignored("device"), block=_FT),
    "ft peer": Command("ft peer ...", _ignored("device"), block=_FT),
    "ft group": Command("ft group ...", _ignored("device"), block=_FT),
    "ft track": Command("ft track ...", _ignored("device", 3), block=_FT),
    "resource-class": Command("resource-class ...", _ignored("device", 1), block=_vocabulary("resource-class", "limit-resource description")),
    "role": Command("role ...", _ignored("device", 1), block=_vocabulary("role", "rule description")),
    "domain": Command("domain ...", _ignored("device", 1), block=_vocabulary("domain", "add-object description")),
    "kalap": Command("kalap ...", _ignored("device", 1), block=_vocabulary("kalap", "ip")),
    "crypto": Command(
        "crypto ...",
        _ignored("device"),
        block=_vocabulary(
            "crypto",
            "cert country state locality organization-name organization-unit common-name serial-number email",
        ),
    ),
    "class-map type management": Command("class-map type management ...", _ignored("device", 3), block=_MGMT_CLASS_MAP),
    "policy-map type management": Command("policy-map type management ...", _management, block=_MGMT_POLICY),
    "timeout xlate": Command("timeout xlate T", _ignored("device")),
    "action-list": Command("action-list ...", _ignored("device", 3), block=_vocabulary(
        "action-list", "header ssl description")),
}
for _phrase in ("ip route", "ip domain-name", "ip domain-lookup", "ip domain-list", "ip name-server", "no ft"):
    TOP[_phrase] = Command(f"{_phrase} ...", _ignored("device"))
for _word in (
    "logging hostname snmp-server username boot banner ssh telnet login clock ntp arp "
    "shared-vlan-hostid peer nat-pool aaa tacacs-server radius-server ldap-server script "
    "config terminal version switchover generating"
).split():
    TOP[_word] = Command(f"{_word} ...", _ignored("device", 1))
TOP = {phrase: replace(cmd, device=True) for phrase, cmd in TOP.items()}


def _description(s: ParseSession, target: Any, a: Args) -> Any:
    s.ignore("unused", a.number, "description")
    return target


# Accepted in every mode, where it stands (the mode stays open).
ANYWHERE = block("any mode", {"description": Command("description TEXT", _description)})
