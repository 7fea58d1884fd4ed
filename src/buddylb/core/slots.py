"""Flat, fixed-width storage of sticky entries (issue 11): the memory layout, nothing else.

An entry lives in a *slot*: one fixed-size record in an anonymous memory map —
zero-filled, and only the pages slots have touched count in the resident set, so a table
sized for millions costs nothing until it fills.  The fields are strided views into the
records (`s.stamp[slot]` reads the record's stamp), so the fields of one entry share a
cache line or two.  Per slot, by byte offset in its record:

    0   lo    u64   the key (`encode`): an IPv4 key or `address both` pair; an IPv6 key
                    is `hi:lo`, `hi` in an array of its own (never written for IPv4, so
                    its pages stay unmapped)
    8   stamp u32   last activity, in ticks of 1/TICKS s, rounded up (expiry at most a tick late)
    12  open  u32   open connections (L4) / requests in flight (L7)
    16  gen   u32   bumped on every reuse, so a handle to a removed entry is recognised
    20  prev, nxt u32  the scope's last-activity list (slot + 1; 0 = none): exact LRU in O(1)
    28  tag   u16   0 = free, else (scope number << 2 | key form) + 1
    30  last  u8    index of the last farm in the scope's farms
    31  farms u8 x width   per-farm rserver as member index + 1 (0: never used there),
                    at `farms[slot * stride + fi]`; the record is rounded up to 8 bytes

The key index is open addressing with linear probing over a power-of-two array of
slot + 1 (0 = empty), sized for the table's capacity at a load of at most 2/3, with
backward-shift deletion (no tombstones): a lookup is one hash and a short probe.  The
bits of an index entry above slot + 1 (9 at 4M entries) hold a fingerprint of the key's
hash, so a probe passes other keys' entries without reading their records (each such
read was a cache miss: a new client's lookup reads ~0.15 of them at 1M entries in 8M).
Keys that have no fixed-width form (cookie and header values, TLS session ids,
`address both` with IPv6) sit in a per-scope dict beside it (`ScopeTable.other`).

Sizes are fixed when the table is made, so nothing ever grows or rehashes on the data
path: an insert or a removal is O(1) whatever the table holds.

This module never reads a clock and never does I/O.  It is plain Python; built with
Cython (setup.py, `BUDDYLB_PURE=1` to skip) the same source runs compiled.
"""
from __future__ import annotations

import mmap

M64 = 0xFFFFFFFFFFFFFFFF
_M32 = 0xFFFFFFFF  # (compiled: a C constant, so the generation bump is C arithmetic)
TICKS = 8  # stamp ticks per second
FORM_RAW, FORM_BOTH4, FORM_V6 = 0, 1, 2  # how a key int maps onto (lo, hi): see encode()
_K1 = 0x9E3779B97F4A7C15
_K2 = 0xFF51AFD7ED558CCD
_T48 = 1 << 48
_V6 = FORM_V6  # (compiled: a C constant)
HUGE_MIN = 8 << 20  # below this a table's maps stay on small pages (a huge page is 2 MiB of RSS)
FARMS_AT = 31  # byte offset of the per-farm member bytes in a slot's record


def region(n: int, fmt: str, huge: bool = False) -> memoryview:
    """`n` zeroed items of struct format `fmt`, mapped lazily (untouched pages cost no RSS).

    `huge`: ask for transparent huge pages (Linux `madvise`; elsewhere a no-op).  The
    records and the key index are read at random, one or two cache lines per decision:
    with 4 KiB pages each of those reads is also a TLB miss (issue 11)."""
    width = {"B": 1, "H": 2, "I": 4, "Q": 8}[fmt]
    # MAP_PRIVATE: a worker forked after the table was made gets its own copy on write,
    # never pages shared with its parent or siblings (`mmap(-1, n)` alone is MAP_SHARED)
    m = mmap.mmap(-1, max(n, 1) * width, flags=mmap.MAP_PRIVATE)
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if huge and advice is not None and n * width >= HUGE_MIN:
        m.madvise(advice)
    return memoryview(m).cast(fmt)


def encode(key: object) -> tuple[int, int, int] | None:
    """(lo, hi, form) for a key int that fits two words, else None (kept in a dict).

    Forms, so every scope kind round-trips exactly (`core.keys` builds the ints):
    raw: 0 <= key < 2**64 (IPv4 source or destination); both4: key = 1 << 64 | src << 32
    | dst; v6: key = 1 << 130 | a 128-bit value."""
    if type(key) is not int or key < 0:
        return None
    top = key >> 64
    if top == 0:
        return key, 0, FORM_RAW
    if top == 1:
        return key & M64, 0, FORM_BOTH4
    if key >> 128 == 4:
        return key & M64, (key >> 64) & M64, FORM_V6
    return None


def decode(lo: int, hi: int, form: int) -> int:
    if form == FORM_RAW:
        return lo
    if form == FORM_BOTH4:
        return (1 << 64) | lo
    return (1 << 130) | (hi << 64) | lo


class Slots:
    """The arrays of one context's table, its key index and its free list."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.width = max(width, 1)
        # one record per slot, so a decision's reads and writes of one entry share a cache
        # line or two (issue 11: a dozen separate arrays cost a dozen misses at 1M clients)
        self.stride = (FARMS_AT + self.width + 7) & ~7
        record = region(capacity * self.stride, "B", huge=True)
        q8, q4, q2 = self.stride // 8, self.stride // 4, self.stride // 2
        self.lo = record.cast("Q")[0::q8]
        self.stamp = record.cast("I")[2::q4]
        self.open = record.cast("I")[3::q4]
        self.gen = record.cast("I")[4::q4]
        self.prev = record.cast("I")[5::q4]
        self.nxt = record.cast("I")[6::q4]
        self.tag = record.cast("H")[14::q2]
        self.last = record[30::self.stride]
        self.farms = record[FARMS_AT:]  # slot's farm fi at slot * stride + fi
        self.hi = region(capacity, "Q")  # apart: only IPv6 keys write it
        size = 8
        while size * 2 < capacity * 3:
            size *= 2
        self.mask = size - 1
        self.index = region(size, "I", huge=True)
        self.slot_mask = (1 << capacity.bit_length()) - 1  # slot + 1 <= capacity
        self.fp_mask = _M32 ^ self.slot_mask  # the rest of an index entry: the fingerprint
        self.high = 0  # slots ever handed out; slots below it are in use or on the free list
        self.free = 0  # first free slot + 1, chained through `nxt`

    # -- the key index --------------------------------------------------------------------
    def hash_key(self, lo: int, hi: int, tag: int) -> int:
        """64 bits of the key: its low bits place it in the index, bits 32 and up are its
        fingerprint there."""
        h = (lo ^ ((hi * _K1) & M64) ^ (tag * _T48)) & M64
        h = (h * _K2) & M64
        return h ^ (h >> 29)

    def home(self, lo: int, hi: int, tag: int) -> int:
        return self.hash_key(lo, hi, tag) & self.mask

    def find(self, lo: int, hi: int, tag: int) -> int:
        """The slot holding this key, or -1."""
        index, mask, fp_mask = self.index, self.mask, self.fp_mask
        h = self.hash_key(lo, hi, tag)
        i = h & mask
        fp = (h >> 32) & fp_mask
        while True:
            v = index[i]
            if v == 0:
                return -1
            if (v & fp_mask) == fp:
                s = (v & self.slot_mask) - 1
                if self.lo[s] == lo and self.tag[s] == tag and (((tag - 1) & 3) != _V6 or self.hi[s] == hi):
                    return s
            i = (i + 1) & mask

    def _hash_of(self, slot: int) -> int:
        """`hash_key` of the key in `slot`; `hi` is read for IPv6 keys only (for the others it
        is 0, and its pages, never written, would each cost a TLB miss for nothing)."""
        tag = self.tag[slot]
        return self.hash_key(self.lo[slot], self.hi[slot] if ((tag - 1) & 3) == _V6 else 0, tag)

    def place(self, slot: int) -> None:
        """Put `slot` (its key already written) into the key index."""
        index, mask = self.index, self.mask
        h = self._hash_of(slot)
        i = h & mask
        while index[i] != 0:
            i = (i + 1) & mask
        index[i] = (slot + 1) | ((h >> 32) & self.fp_mask)

    def unplace(self, slot: int) -> int:
        """Take `slot` out of the key index; backward-shift the probe run behind it.
        Returns how many entries of that run were read (each reads a record: the work
        a removal did beyond its own slot, which `StickyTable.sweep` counts)."""
        index, mask, slot_mask = self.index, self.mask, self.slot_mask
        i = self._hash_of(slot) & mask
        while (index[i] & slot_mask) != slot + 1:
            i = (i + 1) & mask
        j = i
        run = 0
        while True:
            j = (j + 1) & mask
            s = index[j]
            if s == 0:
                break
            run += 1
            k = self._hash_of((s & slot_mask) - 1) & mask
            # move s back to the hole at i unless its home lies cyclically in (i, j]
            if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
                index[i] = s
                i = j
        index[i] = 0
        return run

    # -- slot life --------------------------------------------------------------------------
    def take(self) -> int:
        """A free slot, reset; the caller writes the key and links it. Never beyond capacity."""
        if self.free:
            s = self.free - 1
            self.free = self.nxt[s]
        else:
            s = self.high
            self.high += 1
        self.gen[s] = (self.gen[s] + 1) & _M32
        self.open[s] = 0
        base = s * self.stride
        for f in range(self.width):
            self.farms[base + f] = 0
        return s

    def release(self, slot: int) -> None:
        if ((self.tag[slot] - 1) & 3) == _V6:
            self.hi[slot] = 0  # only IPv6 keys write `hi`; a slot taken again finds it clear
        self.tag[slot] = 0
        self.gen[slot] = (self.gen[slot] + 1) & _M32
        self.nxt[slot] = self.free
        self.prev[slot] = 0
        self.free = slot + 1
