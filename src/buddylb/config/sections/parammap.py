"""`parameter-map type http|connection|ssl NAME` (ACE advanced options, SPEC §2.4).

Honoured where buddylb has the setting: an ssl parameter-map named by `ssl
advanced-options NAME` under an `ssl-proxy service` gives that VIP its cipher suites
(`cipher NAME`, ACE names) and its lowest TLS version (`version`; buddylb never goes
below TLS 1.2).  Lines that describe what buddylb does anyway (`server-conn reuse`,
`header modify per-request`, `persistence-rebalance`: an L7 VIP decides and rewrites
every request) are recorded as used.  The rest warn, once per kind, saying what
buddylb does instead (its header limits, its global `timeout client`).
It never builds a TLS context (io.tls does) and never opens a socket.
"""
from __future__ import annotations

from typing import Any

from buddylb.config.grammar import Args, Block, Command, LineError, block
from buddylb.config.model import ParameterMap
from buddylb.config.sections.notes import mapped, unused
from buddylb.config.sections.probe import ACE_CIPHERS, openssl_has
from buddylb.config.session import ParseSession, claim_name

_VERSIONS = {"all": None, "tls1": "TLSv1_2", "tls1_1": "TLSv1_2", "tls1_2": "TLSv1_2", "ssl3": "TLSv1_2",
             "tls1_3": "TLSv1_3"}


def _cipher(s: ParseSession, pm: ParameterMap, a: Args) -> None:
    name = a.word("cipher name")
    if a.accept("priority"):
        a.integer("cipher priority", 1, 10)
    a.end()
    cipher = ACE_CIPHERS.get(name.lower())
    if cipher is None:
        raise LineError(f'cipher "{name}" is not an ACE cipher suite buddylb knows; write one of '
                        + ", ".join(k.upper() for k in ACE_CIPHERS))
    if not openssl_has(cipher):
        s.mapping("ssl cipher unavailable", a.number,
                  f'cipher {name} ({cipher}) is not available in this OpenSSL; it is left out')
        return
    if "_CBC_" in name.upper():
        s.mapping("parameter-map cbc cipher", a.number,
                  f'cipher {name} is a CBC suite (LUCKY13): buddylb offers it because the parameter-map asks, '
                  "where its own default offers AEAD suites only; prefer RSA_WITH_AES_128_GCM_SHA256 or ECDHE suites")
    pm.ciphers.append(cipher)


def _version(s: ParseSession, pm: ParameterMap, a: Args) -> None:
    word = a.keyword("version", tuple(_VERSIONS))
    a.end()
    pm.min_version = _VERSIONS[word]
    if word in ("tls1", "tls1_1", "ssl3"):
        s.mapping("parameter-map ssl version", a.number,
                  f'"version {word}": buddylb never offers less than TLS 1.2; clients of older versions are refused')


def _used(phrase: str) -> Command:
    def used(s: ParseSession, pm: ParameterMap, a: Args) -> None:
        pm.used.append(phrase)

    return Command(f"{phrase} ...", used)


_HEADER_LIMIT = ('"set header-maxparse-length": buddylb reads request heads up to its own limits (a field '
                 "line 8 KiB, the header section 32 KiB, 100 fields); longer heads get 431")
_INACTIVITY = ('"set timeout inactivity": buddylb closes idle connections after its global "timeout client" '
               '(default 30 s); write "timeout client T" at the top of the file to change it for every VIP')

HTTP = block(
    "parameter-map type http",
    {
        "server-conn reuse": _used("server-conn reuse"),
        "header modify per-request": _used("header modify per-request"),
        "persistence-rebalance": _used("persistence-rebalance"),
        "set header-maxparse-length": mapped("set header-maxparse-length", _HEADER_LIMIT),
        "set content-maxparse-length": unused("set content-maxparse-length"),
        "length-exceed": unused("length-exceed"),
        "case-insensitive": mapped(
            "case-insensitive", '"case-insensitive": http class-map regexes stay case-sensitive (Python re); '
            "write (?i) at the start of a regex to ignore case", "unsupported"),
        "set secondary-cookie-delimiters": unused("set secondary-cookie-delimiters"),
        "description": unused("description"),
    },
)
CONNECTION = block(
    "parameter-map type connection",
    {
        "set timeout inactivity": mapped("set timeout inactivity", _INACTIVITY),
        **{w: unused(f"parameter-map connection {w}") for w in (
            "nagle", "syn-data", "exceed-mss", "tcp-options", "set tcp", "slowstart", "reserved-mss",
            "urgent-pointer", "random-sequence-number", "rate-limit", "set", "description")},
    },
)
SSL = block(
    "parameter-map type ssl",
    {
        "cipher": Command("cipher NAME [priority N]", _cipher),
        "version": Command("version all|tls1|tls1_1|tls1_2", _version, once="version"),
        **{w: unused(f"parameter-map ssl {w}") for w in (
            "session-cache", "close-protocol", "queue-delay", "expired-cert", "purpose-check", "rehandshake",
            "reject-expired-crl", "description")},
    },
)


def _opener(kind: str) -> Any:
    def open_map(s: ParseSession, _target: Any, a: Args) -> ParameterMap:
        ctx = s.context(a.number)
        name = a.name("parameter-map name")
        a.end()
        claim_name({"parameter-map": ctx.parameter_maps}, name, "parameter-map")
        pm = ctx.parameter_maps[name] = ParameterMap(name=name, line=a.number, kind=kind)
        return pm

    return open_map


def _other(s: ParseSession, _target: Any, a: Args) -> None:
    kind = a.line.words[2].lower() if len(a.line.words) > 2 else "?"
    s.mapping(f"parameter-map type {kind}", a.number,
              f'"parameter-map type {kind}" is not used by buddylb', "unsupported")


TOP: dict[str, Command] = {
    "parameter-map type http": Command("parameter-map type http NAME", _opener("http"), block=HTTP),
    "parameter-map type connection": Command(
        "parameter-map type connection NAME", _opener("connection"), block=CONNECTION),
    "parameter-map type ssl": Command("parameter-map type ssl NAME", _opener("ssl"), block=SSL),
    "parameter-map": Command("parameter-map type ...", _other, block=Block("parameter-map", {}, 1, True)),
}
