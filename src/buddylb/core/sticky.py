"""The in-memory sticky database (SPEC §3): one StickyTable per context.

Entries are keyed by (scope, key) and remember the *last* farm the client used in the
scope and the rserver it used in *each* farm of the scope.  Verbs (STYLE): lookup /
insert / record / opened / closed / sweep / evict / clear; for stores peek / adopt /
forget; whole-table reads are `core.sticky_scan`.  Over 400 lines: expiry, LRU, eviction
and store adoption share slot operations compiled together (sticky.pxd), kept private.

Theory of operation
- Storage is `core.slots`: one fixed-size record per slot, sized for the context's
  `max-entries` when the table is made (memory maps: only touched pages count), and a
  key index that never grows.  About 55 bytes per IPv4 entry at 4M, with nothing per
  entry that the garbage collector or the allocator sees.
- Each scope keeps its entries in a doubly linked list through the slots, in order of
  *last activity* (a decision or a connection close moves the entry to the tail).
  All entries of a scope share one timeout, so the head is also the entry that expires
  first: expiry is a bounded walk from the head (`sweep(now, budget)`), never a scan
  (HAProxy's bounded purge).  An entry with open connections cannot expire (unless the
  scope says `timeout activeconns`); the sweep rotates it to the tail and moves on.
- Capacity is per context.  When full, the least recently used entry *without open
  connections* across the context's scopes is evicted; entries in use never are.  If
  every entry is in use the client is balanced without an entry (`unstored`).  An
  expired entry is never returned: `lookup` checks the deadline itself.
- `Entry` is a handle (table, slot, generation) made when asked for; a handle whose
  slot was freed or reused since is *stale* and every write through it is ignored, as
  writes to a removed entry were before.  After a reload, `carry_over` moves entries to
  the new table and leaves a forwarder: a flow that started before it reports its
  close to the old table, which passes it on by key.
- Stamps are ticks of 1/8 s, rounded up: expiry is at most 125 ms late, never early.  No
  I/O, no clock read: `now` is passed in (seconds, monotonic).
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterator

from buddylb.core.counters import Counters
from buddylb.core.scope_table import ScopeTable  # re-exported: the table's per-scope part
from buddylb.core.slots import FORM_V6, TICKS, Slots, decode, encode
from buddylb.core.snapshot import Context

ROTATE_LIMIT = 64  # entries with open connections skipped per eviction attempt
SWEEP_WORK = 4  # a sweep's work bound, in entries visited or moved per unit of budget
FORM_OTHER = 3  # the key has no fixed-width form: it lives in ScopeTable.other


class Entry:
    """A handle on one client's entry: reads go to the table's arrays."""

    __slots__ = ("table", "st", "slot", "gen")

    def __init__(self, table: "StickyTable", st: ScopeTable, slot: int, gen: int) -> None:
        self.table = table
        self.st = st
        self.slot = slot
        self.gen = gen

    def __eq__(self, other: object) -> bool:
        """Two handles are equal when they name the same entry (same slot, same life)."""
        return (isinstance(other, Entry) and other.table is self.table and other.slot == self.slot
                and other.gen == self.gen)

    def __hash__(self) -> int:
        return hash((id(self.table), self.slot, self.gen))

    @property
    def alive(self) -> bool:
        """False once the entry was removed, its slot reused, or the table reloaded."""
        return self.table.retired is None and self.table.s.gen[self.slot] == self.gen

    @property
    def last(self) -> int:
        return self.last_farm()

    def last_farm(self) -> int:
        """`last` as a method: compiled, the decision path calls it in C."""
        t = self.table
        return t.s.last[self.slot] if t.retired is None and t.s.gen[self.slot] == self.gen else 0

    def member_index(self, fi: int) -> int:
        """The member byte stored for farm number `fi` (index + 1 into the farm's members,
        0: never used there or a stale handle): decide()'s rule 3 reads it in C."""
        t = self.table
        if t.retired is not None or t.s.gen[self.slot] != self.gen:
            return 0
        s = t.s
        return s.farms[self.slot * s.stride + fi]

    @property
    def open(self) -> int:
        return self.table.s.open[self.slot] if self.alive else 0

    @property
    def stamp(self) -> float:
        return self.table.s.stamp[self.slot] / TICKS if self.alive else 0.0

    def rserver(self, fi: int) -> str | None:
        """The rserver remembered for farm number `fi` of the scope (None: never used)."""
        if not self.alive:
            return None
        s = self.table.s
        return self.st.names[fi][s.farms[self.slot * s.stride + fi]]

    @property
    def farms(self) -> tuple:
        return tuple(self.rserver(i) for i in range(self.st.nfarms))

    @property
    def last_rserver(self) -> str | None:
        return self.rserver(self.last)


class StickyTable:
    """The sticky database of one context (SPEC §3), bounded by `max_entries`."""

    def __init__(self, context: str, max_entries: int, ctx: Context | None = None) -> None:
        self.context = context
        self.max_entries = max_entries
        self.counters = Counters()
        self.size = 0
        self.scopes: dict[str, ScopeTable] = {}
        self._by_sid: list[ScopeTable] = []
        if ctx is not None:
            for scope in ctx.scopes.values():
                st = ScopeTable(scope, len(self._by_sid), ctx)
                self.scopes[scope.name] = st
                self._by_sid.append(st)
        width = max((st.nfarms for st in self._by_sid), default=1)
        self.s = Slots(max_entries, width)
        self._sweep_pos = 0
        self.retired: StickyTable | None = None  # set by carry_over: the table that took over

    @classmethod
    def for_context(cls, ctx: Context) -> "StickyTable":  # one per context, at (re)load
        return cls(ctx.name, ctx.max_entries, ctx)

    def stamp(self, now: float) -> int:
        """`now` in ticks, rounded up (an entry expires at most one tick late); C arithmetic compiled."""
        whole = int(now * TICKS) if now > 0 else 0
        return whole + (whole < now * TICKS)

    # -- slot plumbing -------------------------------------------------------------------------
    def _find(self, st: ScopeTable, key: Hashable) -> int:
        enc = encode(key)
        if enc is None:
            return st.other.get(key, -1)
        return self.s.find(enc[0], enc[1], st.tag(enc[2]))

    def _key(self, st: ScopeTable, slot: int) -> Hashable:
        s = self.s
        form = (s.tag[slot] - 1) & 3
        if form == FORM_OTHER:
            return st.other_keys[slot]
        return decode(s.lo[slot], s.hi[slot] if form == FORM_V6 else 0, form)

    def _new(self, st: ScopeTable, key: Hashable, fi: int, member: int, stamp: int) -> int:
        enc = encode(key)
        if enc is not None:
            return self._new_fixed(st, enc[0], enc[1], enc[2], fi, member, stamp)
        s = self.s
        slot = s.take()
        s.tag[slot] = st.tag(FORM_OTHER)
        st.other[key] = slot
        st.other_keys[slot] = key
        return self._link_new(st, slot, fi, member, stamp)

    def _new_fixed(self, st: ScopeTable, lo: int, hi: int, form: int, fi: int, member: int, stamp: int) -> int:
        s = self.s
        slot = s.take()
        s.lo[slot] = lo
        if hi:
            s.hi[slot] = hi
        s.tag[slot] = st.tag(form)
        s.place(slot)
        return self._link_new(st, slot, fi, member, stamp)

    def _link_new(self, st: ScopeTable, slot: int, fi: int, member: int, stamp: int) -> int:
        s = self.s
        s.last[slot] = fi
        s.farms[slot * s.stride + fi] = member
        s.stamp[slot] = stamp
        self._link_tail(st, slot)
        st.count += 1
        self.size += 1
        return slot

    def _remove(self, st: ScopeTable, slot: int) -> int:
        """Remove the entry in `slot`; returns the key-index entries it moved (`sweep` counts them)."""
        s = self.s
        run = 0
        self._unlink(st, slot)
        if (s.tag[slot] - 1) & 3 == FORM_OTHER:
            del st.other[st.other_keys.pop(slot)]
        else:
            run = s.unplace(slot)
        s.release(slot)
        st.count -= 1
        self.size -= 1
        return run

    def _link_tail(self, st: ScopeTable, slot: int) -> None:
        s = self.s
        s.prev[slot] = st.tail
        s.nxt[slot] = 0
        if st.tail:
            s.nxt[st.tail - 1] = slot + 1
        else:
            st.head = slot + 1
        st.tail = slot + 1

    def _unlink(self, st: ScopeTable, slot: int) -> None:
        s = self.s
        p, n = s.prev[slot], s.nxt[slot]
        if p:
            s.nxt[p - 1] = n
        else:
            st.head = n
        if n:
            s.prev[n - 1] = p
        else:
            st.tail = p

    def _to_tail(self, st: ScopeTable, slot: int) -> None:
        if st.tail != slot + 1:
            self._unlink(st, slot)
            self._link_tail(st, slot)

    def _expired(self, st: ScopeTable, slot: int, now: float) -> bool:
        s = self.s
        return (s.open[slot] == 0 or st.activeconns) and now * TICKS >= s.stamp[slot] + st.ticks

    def _handle(self, st: ScopeTable, slot: int) -> Entry:
        """A handle on `slot` as it is now (compiled: made without a constructor call)."""
        e = Entry.__new__(Entry)
        e.table = self
        e.st = st
        e.slot = slot
        e.gen = self.s.gen[slot]
        return e

    def _mine(self, e: Entry) -> bool:
        return e.table is self and self.retired is None and self.s.gen[e.slot] == e.gen

    def expires_in(self, e: Entry, now: float) -> float | None:
        """Seconds until expiry (capped at the timeout: stamps round up a tick), or None
        while open connections hold the entry."""
        s = self.s
        if s.open[e.slot] and not e.st.activeconns:
            return None
        return min(e.st.timeout, max(0.0, s.stamp[e.slot] / TICKS + e.st.timeout - now))

    # -- the decision path ----------------------------------------------------------------------
    def lookup(self, scope: str, key: Hashable, now: float) -> Entry | None:
        if self.retired is not None:
            return self.retired.lookup(scope, key, now)
        st = self.scopes[scope]
        slot = self._find(st, key)
        if slot < 0:
            return None
        if self._expired(st, slot, now):
            self._remove(st, slot)
            self.counters.expirations += 1
            return None
        return self._handle(st, slot)

    def lookup_fixed(self, st: ScopeTable, lo: int, form: int, now: float) -> Entry | None:
        """`lookup` of a key in fixed-width form (decide() parses IPv4 in C); table not retired."""
        slot = self.s.find(lo, 0, st.tag(form))
        if slot < 0:
            return None
        if self._expired(st, slot, now):
            self._remove(st, slot)
            self.counters.expirations += 1
            return None
        return self._handle(st, slot)

    def insert(self, scope: str, key: Hashable, farm_idx: int, rserver: str, now: float,
               known_absent: bool = False) -> Entry | None:
        """Insert-or-get (SPEC §3): an existing live entry wins and is returned as is.

        `known_absent`: the caller's lookup in this same step found nothing, so the
        second lookup is skipped. Returns None when the table is full of entries in use
        (the client is balanced without an entry, counted as `unstored`), or when the
        rserver is not a member of that farm in this table's configuration."""
        if self.retired is not None:
            return self.retired.insert(scope, key, farm_idx, rserver, now, known_absent)
        st = self.scopes[scope]
        if not known_absent:
            existing = self.lookup(scope, key, now)
            if existing is not None:
                return existing
        member = st.index_of[farm_idx].get(rserver, 0)
        if member == 0:
            return None
        if self.size >= self.max_entries and not self._make_room(now):
            self.counters.unstored += 1
            return None
        slot = self._new(st, key, farm_idx, member, self.stamp(now))
        return self._handle(st, slot)

    def insert_fixed(self, st: ScopeTable, lo: int, form: int, farm_idx: int, member: int,
                     now: float) -> Entry | None:
        """`insert` of a key known absent, in fixed-width form, its rserver as a member
        byte (decide() has both; this table is not retired).  None as `insert` says."""
        if member == 0:
            return None
        if self.size >= self.max_entries and not self._make_room(now):
            self.counters.unstored += 1
            return None
        return self._handle(st, self._new_fixed(st, lo, 0, form, farm_idx, member, self.stamp(now)))

    def record(self, scope: str, key: Hashable, e: Entry, farm_idx: int, rserver: str, now: float) -> None:
        """The client was sent to `rserver` in farm `farm_idx`: it becomes the last."""
        if not self._mine(e):
            if e.table.retired is not None:  # a flow from before a reload: follow the key
                nt = e.table.retired
                ne = nt.peek(scope, key, now)
                if ne is not None:
                    nt.record(scope, key, ne, farm_idx, rserver, now)
            return
        st = e.st
        member = st.index_of[farm_idx].get(rserver, 0)
        if member != 0:
            self.touch(e, farm_idx, member, now)

    def touch(self, e: Entry, farm_idx: int, member: int, now: float) -> None:
        """`record` with the rserver as its member byte (decide()'s rule 3 has it); a handle
        not of this live table is ignored (`record` forwards those by key)."""
        if not self._mine(e) or member == 0:
            return
        st, slot, s = e.st, e.slot, self.s
        s.farms[slot * s.stride + farm_idx] = member
        s.last[slot] = farm_idx
        s.stamp[slot] = self.stamp(now)
        self._to_tail(st, slot)

    def opened(self, e: Entry) -> None:
        if self._mine(e):
            self.s.open[e.slot] += 1

    def closed(self, scope: str, key: Hashable, e: Entry, now: float) -> None:
        """A connection of this entry closed; the timeout now counts from here (SPEC §3)."""
        if not self._mine(e):
            if self.retired is not None:  # opened before a reload: the successor holds it now
                ne = self.retired.peek(scope, key, now, live_only=False)
                if ne is not None:
                    self.retired.closed(scope, key, ne, now)
            return
        st, slot, s = e.st, e.slot, self.s
        if s.open[slot] > 0:
            s.open[slot] -= 1
        if st.activeconns:
            return
        s.stamp[slot] = self.stamp(now)
        self._to_tail(st, slot)

    # -- stores ---------------------------------------------------------------------------------
    def peek(self, scope: str, key: Hashable, now: float, live_only: bool = True) -> Entry | None:
        """The entry for `key`, without touching order, counters or an expired entry
        (operator views and stores read with this; only the data path's `lookup` reaps)."""
        if self.retired is not None:
            return self.retired.peek(scope, key, now, live_only)
        st = self.scopes.get(scope)
        if st is None:
            return None
        slot = self._find(st, key)
        if slot < 0 or (live_only and self._expired(st, slot, now)):
            return None
        return self._handle(st, slot)

    def adopt(self, scope: str, key: Hashable, farms: tuple, last: int, now: float) -> Entry | None:
        """Make the local entry what a shared store holds: the per-farm rservers `farms`
        (one per scope farm, None where unused) and the last farm index `last`.

        Insert-or-update; the local open-connection count is kept, the stamp becomes
        `now`: the one way a store writes entries.  Rservers this configuration does not
        know are dropped; None when the last one is unknown or the table is full."""
        st = self.scopes[scope]
        members = [st.index_of[i].get(r, 0) if r is not None else 0 for i, r in enumerate(farms)]
        if members[last] == 0:
            return None
        e = self.lookup(scope, key, now)
        if e is None:
            e = self.insert(scope, key, last, farms[last], now, known_absent=True)
            if e is None:
                return None
        s, base = self.s, e.slot * self.s.stride
        for i, m in enumerate(members):
            s.farms[base + i] = m
        s.last[e.slot] = last
        s.stamp[e.slot] = self.stamp(now)
        self._to_tail(st, e.slot)
        return e

    def forget(self, scope: str, key: Hashable) -> bool:
        """Remove the entry for `key` unless connections hold it (a shared store has none)."""
        st = self.scopes.get(scope)
        slot = self._find(st, key) if st is not None else -1
        if st is None or slot < 0 or self.s.open[slot]:
            return False
        self._remove(st, slot)
        return True

    # -- expiry and eviction --------------------------------------------------------------------
    def sweep(self, now: float, budget: int = 256) -> int:
        """Remove up to `budget` expired entries, visiting scopes in turn. Bounded work:
        at most `budget` entries visited, and the call also ends once the work done —
        entries visited plus key-index entries the removals read to close their probe
        runs, each a cache miss — reaches SWEEP_WORK x `budget` (issue 11: no step over
        1 ms at 4M entries, however the keys cluster)."""
        removed = 0
        scopes = self._by_sid
        if not scopes:
            return 0
        s = self.s
        work = 0
        limit = SWEEP_WORK * budget
        for _ in range(len(scopes)):
            self._sweep_pos = (self._sweep_pos + 1) % len(scopes)
            st = scopes[self._sweep_pos]
            steps = 0
            while st.head and steps < budget and work < limit:
                steps += 1
                work += 1
                slot = st.head - 1
                if self._expired(st, slot, now):
                    work += self._remove(st, slot)
                    removed += 1
                elif s.open[slot] and not st.activeconns:
                    self._to_tail(st, slot)
                else:
                    break
            budget -= steps
            if budget <= 0 or work >= limit:
                break
        self.counters.expirations += removed
        return removed

    def _make_room(self, now: float) -> bool:
        if self.sweep(now, budget=32):
            return True
        return self.evict()

    def evict(self) -> bool:
        """Evict the least recently used entry without open connections, if any."""
        s = self.s
        best_st: ScopeTable | None = None
        best_slot = -1
        for st in self._by_sid:
            for _ in range(min(ROTATE_LIMIT, st.count)):
                slot = st.head - 1
                if s.open[slot] == 0:
                    if best_slot < 0 or s.stamp[slot] < s.stamp[best_slot]:
                        best_st, best_slot = st, slot
                    break
                self._to_tail(st, slot)  # in use: more recent than any idle entry
        if best_st is None:
            return False
        self._remove(best_st, best_slot)
        self.counters.evictions += 1
        return True

    # -- operator views and commands ------------------------------------------------------------
    def items(self, now: float) -> Iterator[tuple[ScopeTable, Hashable, Entry]]:
        """Live entries, scope by scope, least recently active first. Do not mutate the
        table while iterating (collect first, as `clear` does)."""
        s = self.s
        for st in self._by_sid:
            nxt = st.head
            while nxt:
                slot = nxt - 1
                nxt = s.nxt[slot]
                if not self._expired(st, slot, now):
                    yield st, self._key(st, slot), Entry(self, st, slot, self.s.gen[slot])

    def clear(self, predicate: Callable[[ScopeTable, Hashable, Entry], bool] | None = None) -> int:
        doomed = [(st, e.slot) for st, k, e in self.items(float("-inf")) if predicate is None or predicate(st, k, e)]
        for st, slot in doomed:
            self._remove(st, slot)
        return len(doomed)

    def carry_over(self, ctx: Context) -> "StickyTable":
        """Adopt a reloaded context: keep entries whose scope and rservers still exist.

        SPEC §5: a reload drops only the entries whose scope or rserver no longer exists.
        Farm positions inside a scope may change; entries are remapped by farm name.
        Open-connection counts move along, and this table forwards later closes (of
        flows decided before the reload) to the new one."""
        from buddylb.core.carry import copy_entries  # here: compiled, carry cimports this module

        new = StickyTable(ctx.name, ctx.max_entries, ctx)
        new.counters = self.counters
        copy_entries(self, new)
        self.retired = new
        for st in self._by_sid:
            st.head = st.tail = st.count = 0
            st.other.clear()
            st.other_keys.clear()
        self.s = Slots(1, 1)  # the storage goes now; handles held by open flows only forward
        self.size = 0
        return new
