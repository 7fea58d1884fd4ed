"""Classification: which policy class a connection or request falls into (SPEC §2.1).

L4 traffic is classified by the listener it arrived on (VIP address, protocol, port ->
the multi-match class, compiled into `Snapshot.vips`), so an L4 policy needs only its
first class.  L7 requests go through the policy's classes in order; a class-map's
matches combine with match-all / match-any; regexes use `fullmatch`; `class-default`
matches the rest.  No match: None (the proxy answers 503).
"""
from __future__ import annotations

from typing import Mapping

from buddylb.core.snapshot import HttpMatch, Policy, PolicyClass


def _match_one(m: HttpMatch, url: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
    if m.kind == "url":
        value: str | None = url
    elif m.kind == "header":
        value = headers.get(m.name or "")
    else:
        value = cookies.get(m.name or "")
    return value is not None and m.regex.fullmatch(value) is not None


def classify(
    policy: Policy,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> PolicyClass | None:
    if not policy.http or url is None:
        return policy.classes[0] if policy.classes else None
    h = headers or {}
    c = cookies or {}
    for cls in policy.classes:
        if cls.is_default:
            return cls
        if cls.match_all:
            if all(_match_one(m, url, h, c) for m in cls.matches):
                return cls
        elif any(_match_one(m, url, h, c) for m in cls.matches):
            return cls
    return None
