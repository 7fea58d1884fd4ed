"""Reads over a whole sticky table, bounded and cheap per entry (issue 11).

- `scan`: a page of entries in slot order from a cursor, with the filters evaluated on
  the stored bytes first (scope, farm, rserver), so `show sticky database` answers its
  first page of a table of millions in the time its rows take;
- `keys`: a copy of one scope's keys (the store's write-back pass walks it in batches);
- `member_counts`: per farm, how many entries name each rserver (drain previews,
  `show impact rserver`), without a handle per entry.

Read only: nothing here changes the table, its order or its counters.
"""
from __future__ import annotations

from typing import Callable, Hashable

from buddylb.core.scope_table import ScopeTable
from buddylb.core.sticky import Entry, StickyTable


def scan(table: StickyTable, cursor: int, limit: int, now: float, sids: list[bool] | None = None,
         members: dict[int, list[tuple[int, int]]] | None = None,
         match: Callable[[ScopeTable, int], bool] | None = None,
         budget: int | None = None, prefix4: tuple[int, int] | None = None,
         ) -> tuple[list[tuple[ScopeTable, Hashable, Entry]], int | None]:
    """A page of live entries in slot order from `cursor` (0: the start): up to
    `limit` entries, visiting at most `budget` slots (None: no bound).  Returns
    (page, next cursor or None at the end).  Like Redis SCAN, an entry present for
    the whole walk is returned exactly once (slots never move).

    Filters, cheapest first: `sids[scope number]` must be true; with `members`, the
    entry must name one of its scope's (farm number, member index + 1, 0 = any)
    pairs; with `prefix4` (address, length), the IPv4 source part of the key (the
    address of a source or destination scope) must lie in that prefix, compared at the
    coarser of it and the scope's mask; then `match(scope_table, slot)`."""
    s = table.s
    stride = s.stride
    out: list[tuple[ScopeTable, Hashable, Entry]] = []
    slot, end = max(cursor, 0), s.high
    stop = end if budget is None else min(end, slot + budget)
    by_sid = table._by_sid
    nsids = len(by_sid)
    allowed = [sids is None or bool(sids[i]) for i in range(nsids)]
    pairs = [tuple(members.get(i, ())) if members is not None else () for i in range(nsids)]
    want, shifts = 0, [0] * nsids
    if prefix4 is not None:
        want = prefix4[0]
        shifts = [32 - min(prefix4[1], st.scope.prefix4) for st in by_sid]
    while slot < stop and len(out) < limit:
        tag = s.tag[slot]
        if tag:
            sid = (tag - 1) >> 2
            ok = allowed[sid]
            if ok and members is not None:
                ok = False
                for fi, m in pairs[sid]:
                    have = s.farms[slot * stride + fi]
                    if have and (m == 0 or have == m):
                        ok = True
                        break
            if ok and prefix4 is not None:
                form = (tag - 1) & 3
                if form == 0:
                    src = s.lo[slot]
                elif form == 1:
                    src = s.lo[slot] >> 32
                else:
                    src = -1
                shift = shifts[sid]
                ok = src >= 0 and (src >> shift) == (want >> shift)
            if ok:
                st = by_sid[sid]
                if not table._expired(st, slot, now) and (match is None or match(st, slot)):
                    out.append((st, table._key(st, slot), Entry(table, st, slot, s.gen[slot])))
        slot += 1
    return out, (slot if slot < end else None)

def keys(table: StickyTable, scope: str) -> list[Hashable]:
    """A copy of one scope's keys (expired ones included), least recently active first."""
    st = table.scopes[scope]
    out, nxt, s = [], st.head, table.s
    while nxt:
        out.append(table._key(st, nxt - 1))
        nxt = s.nxt[nxt - 1]
    return out

def member_counts(table: StickyTable, scope: str, now: float) -> list[dict[str, list[int]]]:
    """Per farm of the scope: rserver -> [entries naming it there, of which as last].

    For drain previews (`show impact rserver`): one pass over the scope's slots,
    reading bytes only, no handle per entry."""
    st = table.scopes[scope]
    s, stride = table.s, table.s.stride
    counts = [[[0, 0] for _ in names] for names in st.names]
    nxt = st.head
    while nxt:
        slot = nxt - 1
        nxt = s.nxt[slot]
        if table._expired(st, slot, now):
            continue
        last, base = s.last[slot], slot * stride
        for fi in range(st.nfarms):
            m = s.farms[base + fi]
            if m:
                c = counts[fi][m]
                c[0] += 1
                if fi == last:
                    c[1] += 1
    return [{names[m]: c for m, c in enumerate(fc) if m and c[0]} for names, fc in zip(st.names, counts)]
