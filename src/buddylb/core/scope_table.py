"""One scope's part of a sticky table (`core.sticky`): its rules, its farms' member index
maps (rserver name <-> the member byte a slot stores), the ends of its last-activity
list, and its keys that have no fixed-width form.

A module of its own (compiled: scope_table.pxd) so `core.sticky` keeps to the slot rules;
`core.sticky` re-exports the class.
"""
from __future__ import annotations

from typing import Any, Hashable

from buddylb.core.slots import TICKS
from buddylb.core.snapshot import Context, Scope


class ScopeTable:
    """One scope: its rules, its member index maps, its LRU list ends, its odd keys."""

    __slots__ = ("scope", "sid", "timeout", "ticks", "activeconns", "nfarms", "names", "index_of",
                 "other", "other_keys", "head", "tail", "count")

    def __init__(self, scope: Scope, sid: int, ctx: Context | None = None) -> None:
        self.scope = scope
        self.sid = sid
        self.timeout = scope.timeout_s
        self.ticks = scope.timeout_s * TICKS
        self.activeconns = scope.activeconns
        self.nfarms = len(scope.farms)
        # per scope farm: member index + 1 -> rserver name, and back
        self.names: list[list[str | None]] = []
        self.index_of: list[dict[str, int]] = []
        for f in scope.farms:
            farm = ctx.farms.get(f) if ctx is not None else None
            names = [None] + [m.rserver for m in farm.members] if farm is not None else [None]
            self.names.append(names)
            self.index_of.append({n: i for i, n in enumerate(names) if n is not None})
        self.other: dict[Hashable, int] = {}
        self.other_keys: dict[int, Hashable] = {}
        self.head = 0  # slot + 1 of the least recently active entry; 0: empty
        self.tail = 0
        self.count = 0

    def tag(self, form: int) -> int:
        return ((self.sid << 2) | form) + 1

    def expires_in(self, e: Any, now: float) -> float | None:
        """Seconds until entry `e` (a `core.sticky.Entry`) expires, or None while open
        connections hold it."""
        return e.table.expires_in(e, now)
