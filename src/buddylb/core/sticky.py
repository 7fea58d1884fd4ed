"""The in-memory sticky database (SPEC §3): one StickyTable per context.

Entries are keyed by (scope, key) and remember the *last* farm the client used in the
scope and the rserver it used in *each* farm of the scope.  Verbs (STYLE):
lookup / insert / record / opened / closed / sweep / evict / clear.

Theory of operation
- Each scope has its own OrderedDict whose order is *last activity* (a decision or a
  connection close moves the entry to the end).  All entries of one scope share one
  timeout, so the front of the dict is also the entry that expires first: expiry is a
  bounded pop from the front (`sweep(now, budget)`), never a scan (HAProxy's bounded
  purge).  An entry with open connections cannot expire (unless the scope says
  `timeout activeconns`); the sweep rotates it to the back and moves on.
- Capacity is per context. When full, the least recently used entry *without open
  connections* across the context's scopes is evicted; entries in use never are.  If
  every entry is in use the client is balanced without an entry (`unstored`).
- An expired entry is never returned: `lookup` checks the deadline itself, whatever
  the sweep has reached.
- Memory: an entry is four slots.  `farms` (the per-farm rservers) is an interned
  tuple shared by every entry with the same combination, so per-farm memory costs one
  pointer; `last` is a small int (index into the scope's farms); `stamp` is rounded
  *up* to 1/8 s and the float object is shared by every entry stamped in the same
  eighth of a second, so under load a stamp costs one pointer too (expiry happens at
  most 125 ms late, never early).

It never does I/O and never reads a clock: `now` is passed in (seconds, monotonic).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator

from buddylb.core.snapshot import Context, Scope

ROTATE_LIMIT = 64  # entries with open connections skipped per eviction attempt


class Entry:
    """One client's persistence record inside one scope."""

    __slots__ = ("last", "farms", "open", "stamp")

    def __init__(self, last: int, farms: tuple, stamp: float) -> None:
        self.last = last  # index of the last farm in scope.farms
        self.farms = farms  # rserver name per scope farm (None: never used there)
        self.open = 0  # open connections (L4) / requests in flight (L7)
        self.stamp = stamp  # last activity; expiry counts from here when idle

    @property
    def last_rserver(self) -> str:
        return self.farms[self.last]


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0
    buddy_hits: int = 0
    resticks: int = 0
    evictions: int = 0
    expirations: int = 0
    unstored: int = 0
    no_server: int = 0
    buddy_connections: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class ScopeTable:
    """The entries of one scope, in last-activity order."""

    __slots__ = ("scope", "entries", "interned", "timeout", "activeconns", "nfarms")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.interned: dict[tuple, tuple] = {}
        self.timeout = scope.timeout_s
        self.activeconns = scope.activeconns
        self.nfarms = len(scope.farms)

    def expired(self, e: Entry, now: float) -> bool:
        return (e.open == 0 or self.activeconns) and now >= e.stamp + self.timeout

    def intern(self, farms: tuple) -> tuple:
        t = self.interned.get(farms)
        if t is None:
            t = self.interned[farms] = farms
        return t

    def expires_in(self, e: Entry, now: float) -> float | None:
        """Seconds until expiry, or None while open connections hold the entry."""
        if e.open and not self.activeconns:
            return None
        return max(0.0, e.stamp + self.timeout - now)


STAMP_QUANTUM = 8  # stamps per second


@dataclass
class StickyTable:
    """The sticky database of one context (SPEC §3), bounded by `max_entries`."""

    context: str
    max_entries: int
    scopes: dict[str, ScopeTable] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    size: int = 0
    _sweep_order: list[str] = field(default_factory=list)
    _sweep_pos: int = 0
    _stamp_key: float = -1.0
    _stamp_val: float = 0.0

    def stamp(self, now: float) -> float:
        """`now` rounded up to the quantum, as one shared float object per quantum."""
        q = -(-now * STAMP_QUANTUM // 1)
        if q != self._stamp_key:
            self._stamp_key = q
            self._stamp_val = q / STAMP_QUANTUM
        return self._stamp_val

    @classmethod
    def for_context(cls, ctx: Context) -> "StickyTable":
        table = cls(context=ctx.name, max_entries=ctx.max_entries)
        for scope in ctx.scopes.values():
            table.scopes[scope.name] = ScopeTable(scope)
        table._sweep_order = list(table.scopes)
        return table

    # -- the decision path ---------------------------------------------------------
    def lookup(self, scope: str, key: Hashable, now: float) -> Entry | None:
        st = self.scopes[scope]
        e = st.entries.get(key)
        if e is None:
            return None
        if st.expired(e, now):
            del st.entries[key]
            self.size -= 1
            self.counters.expirations += 1
            return None
        return e

    def insert(self, scope: str, key: Hashable, farm_idx: int, rserver: str, now: float,
               known_absent: bool = False) -> Entry | None:
        """Insert-or-get (SPEC §3): an existing live entry wins and is returned as is.

        `known_absent`: the caller's lookup in this same step found nothing, so the
        second lookup is skipped. Returns None when the table is full of entries in use
        (the client is balanced without an entry, counted as `unstored`)."""
        st = self.scopes[scope]
        if not known_absent:
            existing = self.lookup(scope, key, now)
            if existing is not None:
                return existing
        if self.size >= self.max_entries and not self._make_room(now):
            self.counters.unstored += 1
            return None
        farms = [None] * st.nfarms
        farms[farm_idx] = rserver
        e = Entry(farm_idx, st.intern(tuple(farms)), self.stamp(now))
        st.entries[key] = e
        self.size += 1
        return e

    def record(self, scope: str, key: Hashable, e: Entry, farm_idx: int, rserver: str, now: float) -> None:
        """The client was sent to `rserver` in farm `farm_idx`: it becomes the last."""
        st = self.scopes[scope]
        if e.farms[farm_idx] != rserver:
            farms = list(e.farms)
            farms[farm_idx] = rserver
            e.farms = st.intern(tuple(farms))
        e.last = farm_idx
        e.stamp = self.stamp(now)
        try:
            st.entries.move_to_end(key)
        except KeyError:  # cleared or evicted meanwhile: the flow keeps a detached entry
            pass

    def peek(self, scope: str, key: Hashable, now: float) -> Entry | None:
        """The live entry for `key`, without touching order, counters or an expired entry
        (operator views and stores read with this; only the data path's `lookup` reaps)."""
        st = self.scopes.get(scope)
        e = st.entries.get(key) if st is not None else None
        if e is None or st is None or st.expired(e, now):
            return None
        return e

    def adopt(self, scope: str, key: Hashable, farms: tuple, last: int, now: float) -> Entry | None:
        """Make the local entry what a shared store holds: the per-farm rservers `farms`
        (one per scope farm, None where unused) and the last farm index `last`.

        Insert-or-update; the open-connection count of a local entry is kept (it is
        node-local), the stamp becomes `now`.  The one way a store writes entries, so
        the table's representation stays its own.  None when the table is full of
        entries in use."""
        st = self.scopes[scope]
        e = self.lookup(scope, key, now)
        if e is None:
            e = self.insert(scope, key, last, farms[last], now, known_absent=True)
            if e is None:
                return None
        e.farms = st.intern(tuple(farms))
        e.last = last
        e.stamp = self.stamp(now)
        st.entries.move_to_end(key)
        return e

    def forget(self, scope: str, key: Hashable) -> bool:
        """Remove the entry for `key` unless connections hold it (a shared store has none)."""
        st = self.scopes.get(scope)
        e = st.entries.get(key) if st is not None else None
        if e is None or st is None or e.open:
            return False
        del st.entries[key]
        self.size -= 1
        return True

    @staticmethod
    def opened(e: Entry) -> None:
        e.open += 1

    def closed(self, scope: str, key: Hashable, e: Entry, now: float) -> None:
        """A connection of this entry closed; the timeout now counts from here (SPEC §3)."""
        if e.open > 0:
            e.open -= 1
        st = self.scopes.get(scope)
        if st is None or st.activeconns:
            return
        e.stamp = self.stamp(now)
        try:
            st.entries.move_to_end(key)
        except KeyError:
            pass

    # -- expiry and eviction -------------------------------------------------------
    def sweep(self, now: float, budget: int = 256) -> int:
        """Remove up to `budget` expired entries, visiting scopes in turn. Bounded work."""
        removed = 0
        order = self._sweep_order
        if not order:
            return 0
        for _ in range(len(order)):
            self._sweep_pos = (self._sweep_pos + 1) % len(order)
            st = self.scopes.get(order[self._sweep_pos])
            if st is None:
                continue
            entries = st.entries
            steps = 0
            while entries and steps < budget:
                steps += 1
                key, e = next(iter(entries.items()))
                if st.expired(e, now):
                    del entries[key]
                    removed += 1
                elif e.open and not st.activeconns:
                    entries.move_to_end(key)
                else:
                    break
            budget -= steps
            if budget <= 0:
                break
        self.size -= removed
        self.counters.expirations += removed
        return removed

    def _make_room(self, now: float) -> bool:
        if self.sweep(now, budget=32):
            return True
        return self.evict()

    def evict(self) -> bool:
        """Evict the least recently used entry without open connections, if any."""
        best_st: ScopeTable | None = None
        best: tuple[float, Hashable] | None = None
        for st in self.scopes.values():
            entries = st.entries
            for _ in range(min(ROTATE_LIMIT, len(entries))):
                key, e = next(iter(entries.items()))
                if e.open == 0:
                    if best is None or e.stamp < best[0]:
                        best, best_st = (e.stamp, key), st
                    break
                entries.move_to_end(key)  # in use: more recent than any idle entry
        if best_st is None or best is None:
            return False
        del best_st.entries[best[1]]
        self.size -= 1
        self.counters.evictions += 1
        return True

    # -- operator views and commands -----------------------------------------------
    def items(self, now: float) -> Iterator[tuple[ScopeTable, Hashable, Entry]]:
        for st in self.scopes.values():
            for key, e in list(st.entries.items()):
                if not st.expired(e, now):
                    yield st, key, e

    def clear(self, predicate: Callable[[ScopeTable, Hashable, Entry], bool] | None = None) -> int:
        removed = 0
        for st in self.scopes.values():
            doomed = [k for k, e in st.entries.items() if predicate is None or predicate(st, k, e)]
            for k in doomed:
                del st.entries[k]
            removed += len(doomed)
        self.size -= removed
        return removed

    def carry_over(self, ctx: Context) -> "StickyTable":
        """Adopt a reloaded context: keep entries whose scope and rservers still exist.

        SPEC §5: a reload drops only the entries whose scope or rserver no longer exists.
        Farm positions inside a scope may change; entries are remapped by farm name."""
        new = StickyTable.for_context(ctx)
        new.counters = self.counters
        for name, old_st in self.scopes.items():
            new_st = new.scopes.get(name)
            if new_st is None:
                continue
            old_farms = old_st.scope.farms
            new_index = new_st.scope.farm_index
            farm_members = [ctx.farms[f].by_rserver if f in ctx.farms else {} for f in new_st.scope.farms]
            for key, e in old_st.entries.items():
                farms: list[Any] = [None] * new_st.nfarms
                for i, rs in enumerate(e.farms):
                    j = new_index.get(old_farms[i])
                    if rs is not None and j is not None and rs in farm_members[j]:
                        farms[j] = rs
                last_new = new_index.get(old_farms[e.last])
                if last_new is None or farms[last_new] is None:
                    continue  # its last rserver is gone: the entry goes
                e.farms = new_st.intern(tuple(farms))
                e.last = last_new
                new_st.entries[key] = e
                new.size += 1
        return new
