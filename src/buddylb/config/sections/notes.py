"""Commands of ACE sub-modes that buddylb accepts without acting on them (SPEC §2.3):
`unused(phrase)` records a line buddylb does not need (one warning per kind for the
file), `mapped(kind, message)` a line whose ACE meaning changes here or that buddylb does
not do (`verdict="unsupported"`), with the sentence that says what happens instead.

Sections put these next to their own keywords, so each sub-mode's table is complete.
"""
from __future__ import annotations

from typing import Any

from buddylb.config.grammar import Args, Command, Handler
from buddylb.config.session import ParseSession


def _unused(phrase: str) -> Handler:
    def unused(s: ParseSession, target: Any, a: Args) -> None:
        s.ignore("unused", a.number, phrase)

    return unused


def _mapped(kind: str, message: str, verdict: str) -> Handler:
    def mapped(s: ParseSession, target: Any, a: Args) -> None:
        s.mapping(kind, a.number, message, verdict)

    return mapped


def unused(phrase: str) -> Command:
    return Command(f"{phrase} ...", _unused(phrase))


def mapped(kind: str, message: str, verdict: str = "mapping") -> Command:
    return Command(f"{kind} ...", _mapped(kind, message, verdict))


SERVERS_SEE_US = (
    "servers see buddylb's address as the client's (buddylb is a proxy, as an ACE in routed mode "
    "with source NAT); use send-proxy v1|v2 in the serverfarm or X-Forwarded-For (L7) if they need the client's"
)
