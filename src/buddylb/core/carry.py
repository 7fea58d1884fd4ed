"""A reload's sticky entries (SPEC §5): `StickyTable.carry_over` copies them from the old
table into the new one here, remapped by scope, farm and rserver name.

A module of its own so that `core.sticky` stays one screenful of slot rules; compiled
(setup.py COMPILED, carry.pxd) the copy reads and writes the slots in C, so a reload
of millions of entries is one short pause.  It imports nothing of `core.sticky` at run
time (the types come from carry.pxd), so there is no import cycle.
"""
from __future__ import annotations

from typing import Any


def copy_entries(old: Any, new: Any) -> None:
    """Copy `old`'s live and expired entries (`old` and `new` are StickyTables) whose scope
    and last rserver exist in `new`, oldest first, until `new` is full.  Farm positions
    inside a scope may change; entries are remapped by farm name.  Open-connection
    counts move along."""
    s = old.s
    ns_ = new.s
    for name, old_st in old.scopes.items():
        new_st = new.scopes.get(name)
        if new_st is None:
            continue
        new_index = new_st.scope.farm_index
        old_farms = old_st.scope.farms
        where = [new_index.get(f) for f in old_farms]
        nxt = old_st.head
        while nxt and new.size < new.max_entries:
            slot = nxt - 1
            nxt = s.nxt[slot]
            members = [0] * new_st.nfarms
            for i, j in enumerate(where):
                rs = old_st.names[i][s.farms[slot * s.stride + i]]
                if rs is not None and j is not None:
                    members[j] = new_st.index_of[j].get(rs, 0)
            last = where[s.last[slot]]
            if last is None or members[last] == 0:
                continue  # its last rserver is gone: the entry goes
            ns = new._new(new_st, old._key(old_st, slot), last, members[last], s.stamp[slot])
            for j, m in enumerate(members):
                ns_.farms[ns * ns_.stride + j] = m
            ns_.open[ns] = s.open[slot]
