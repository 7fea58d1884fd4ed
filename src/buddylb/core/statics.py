"""`static cookie-value V rserver R [PORT]` (ACE, SPEC §2.4): a cookie value that always
means one rserver of the sticky group's farm, before any learned or inserted entry.

Pure: `static_member` returns the member a request's cookie names when it is available
(else None: the ordinary rules of SPEC §3 decide, so a static mapping never sends a
client to a failed server).  Nothing is stored in the sticky table for it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from buddylb.core.snapshot import Farm, Member, StickyGroup
from buddylb.core.state import RuntimeState


def static_member(sg: StickyGroup, farms: Sequence[Farm], state: RuntimeState,
                  cookies: Mapping[str, str] | None) -> tuple[Farm, Member] | None:
    if not sg.statics or not cookies:
        return None
    target = sg.statics.get(cookies.get(sg.scope.cookie_name or "", ""))
    if target is None:
        return None
    rserver, port = target
    for farm in farms:
        for m in farm.members:
            if m.rserver == rserver and (port is None or m.port == port) and state.available(m):
                return farm, m
    return None
