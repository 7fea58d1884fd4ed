"""`insert-http NAME header-value V` (ACE, SPEC §2.4): the fields an L7 policy class adds
to every request it forwards.  V may hold ACE's variables: %is (client address),
%id (VIP address), %ps (client port), %pd (VIP port).

Pure: the L7 path passes the connection's addresses and gets the fields to append.  The
fields are added after the client's own; a client field of the same name is not removed
(as on the ACE), so servers should read the last occurrence.
"""
from __future__ import annotations

import re

_VARIABLE = re.compile(r"%(is|id|ps|pd)")

Insert = tuple[bytes, str]  # (lower-case field name, value template)


def compile_inserts(headers: list) -> tuple[Insert, ...]:
    """config.model.ProbeHeader-like (name, value) pairs -> templates."""
    return tuple((h.name.lower().encode("ascii"), h.value) for h in headers)


def insert_fields(inserts: tuple[Insert, ...], src: str, sport: int, dst: str, dport: int) -> list[tuple[bytes, bytes]]:
    if not inserts:
        return []
    values = {"is": src, "ps": str(sport), "id": dst, "pd": str(dport)}
    return [(name, _VARIABLE.sub(lambda m: values[m.group(1)], value).encode("latin-1", "replace"))
            for name, value in inserts]
