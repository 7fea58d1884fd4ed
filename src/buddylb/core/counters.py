"""The sticky table's event counters (SPEC §4 `show sticky database` totals, metrics).

A class of its own so that, compiled (setup.py COMPILED, counters.pxd), the fields are C
integers: the decision path bumps one or two of them on every decision (issue 11), and a
Python attribute increment costs a lookup, a new int and a store."""
from __future__ import annotations

FIELDS = ("hits", "misses", "buddy_hits", "resticks", "evictions", "expirations", "unstored", "no_server",
          "buddy_connections")


class Counters:
    __slots__ = FIELDS

    def __init__(self, hits: int = 0, misses: int = 0, buddy_hits: int = 0, resticks: int = 0,
                 evictions: int = 0, expirations: int = 0, unstored: int = 0, no_server: int = 0,
                 buddy_connections: int = 0) -> None:
        self.hits = hits
        self.misses = misses
        self.buddy_hits = buddy_hits
        self.resticks = resticks
        self.evictions = evictions
        self.expirations = expirations
        self.unstored = unstored
        self.no_server = no_server
        self.buddy_connections = buddy_connections

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "buddy_hits": self.buddy_hits,
                "resticks": self.resticks, "evictions": self.evictions, "expirations": self.expirations,
                "unstored": self.unstored, "no_server": self.no_server,
                "buddy_connections": self.buddy_connections}

    def __repr__(self) -> str:
        return "Counters(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counters) and self.as_dict() == other.as_dict()
