"""Cache hints for the decision path (issue 11): compiled, prefetch instructions; in plain
Python, nothing (there the interpreter's own work dwarfs a cache miss).

No state and no effect on results: a hint only starts loading memory the caller is
about to write."""
from __future__ import annotations

from buddylb.core.slots import Slots

try:  # built by Cython (setup.py COMPILED): the hints below are single instructions
    import cython
    _COMPILED = bool(cython.compiled)
except ImportError:  # no Cython at all: plain Python, no hints
    _COMPILED = False


def lru_neighbours(s: Slots, slot: int) -> None:
    """Start loading, for writing, the records of the entries before and after `slot` in
    its scope's last-activity list.  Moving an entry to the tail writes one field in each:
    at 1M clients two cache misses that stalled the end of every sticky hit; issued as
    soon as the entry is found, they overlap the rest of the decision."""
    if _COMPILED:
        p = s.prev[slot]
        n = s.nxt[slot]
        if p:
            __builtin_prefetch(cython.address(s.nxt[p - 1]), 1, 3)  # noqa: F821 (a C builtin, prefetch.pxd)
        if n:
            __builtin_prefetch(cython.address(s.prev[n - 1]), 1, 3)  # noqa: F821
