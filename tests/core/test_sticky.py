"""The sticky database: expiry (SPEC §3), activeconns, LRU eviction, bounded sweep, reload."""
from __future__ import annotations

from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE
from tests.core.engine import Engine, load
from buddylb.core.sticky import StickyTable
from buddylb.core.sticky_scan import keys

TIMEOUT = 30 * 60


def small(max_entries: int, text: str = ONE_TO_ONE) -> Engine:
    return Engine.from_text(text.replace("service-policy input int", f"sticky-table max-entries {max_entries}\nservice-policy input int"))


def test_expiry_counts_from_last_close():
    e = Engine.from_text(ONE_TO_ONE)
    d = e.connect("127.0.0.10", HTTP)
    e.now += TIMEOUT * 3  # open connection: never expires
    assert e.visit("127.0.0.10", HTTPS).outcome == "buddy_hit"
    e.close(d)  # the last close starts the clock
    e.now += TIMEOUT - 1
    assert e.visit("127.0.0.10", HTTP).outcome == "buddy_hit"  # last farm was decrypted
    e.now += TIMEOUT
    assert e.visit("127.0.0.10", HTTP).outcome == "new"
    assert e.table.counters.expirations == 1


def test_activeconns_expires_from_last_use_even_when_open():
    e = Engine.from_text(ONE_TO_ONE.replace("  timeout 30\n  serverfarm http\n", "  timeout 30\n  timeout activeconns\n  serverfarm http\n"))
    e.connect("127.0.0.10", HTTP)  # stays open
    e.now += TIMEOUT + 1
    assert e.visit("127.0.0.10", HTTP).outcome == "new"


def test_expired_entry_never_shown_or_used_before_sweep():
    e = Engine.from_text(ONE_TO_ONE)
    e.visit("127.0.0.10", HTTP)
    e.now += TIMEOUT + 1
    assert list(e.table.items(e.now)) == []
    assert e.table.lookup("alpha", keys(e.table, "alpha")[0], e.now) is None


def test_sweep_is_bounded_and_removes_only_expired():
    e = Engine.from_text(ONE_TO_ONE)
    for n in range(1000):
        e.visit(f"127.{n // 250}.{n % 250}.1", HTTP)
    e.now += TIMEOUT + 1
    live = e.connect("127.200.0.1", HTTP)
    assert e.table.sweep(e.now, budget=100) == 100
    removed = 100
    while (n := e.table.sweep(e.now, budget=100)):
        removed += n
    assert removed == 1000 and e.table.size == 1
    assert live.entry.open == 1


def test_lru_eviction_exact_and_in_use_entries_kept():
    e = small(3)
    held = e.connect("127.0.0.1", HTTP)  # oldest, but in use
    for c in ("127.0.0.2", "127.0.0.3"):
        e.now += 1
        e.visit(c, HTTP)
    e.now += 1
    e.visit("127.0.0.2", HTTP)  # .2 is now more recent than .3
    e.now += 1
    e.visit("127.0.0.4", HTTP)  # evicts .3: the least recently used idle entry
    keys = {r for r in _clients(e)}
    assert keys == {"127.0.0.1->127.0.0.100", "127.0.0.2->127.0.0.100", "127.0.0.4->127.0.0.100"}
    assert e.table.counters.evictions == 1
    e.close(held)


def test_full_of_in_use_entries_balances_without_entry():
    e = small(2)
    a = e.connect("127.0.0.1", HTTP)
    b = e.connect("127.0.0.2", HTTP)
    d = e.connect("127.0.0.3", HTTP)
    assert d.member is not None and d.entry is None
    assert e.table.counters.unstored == 1 and e.table.size == 2
    e.close(a), e.close(b), e.close(d)


def _clients(e: Engine):
    from buddylb.core.keys import format_key

    for st, key, _ in e.table.items(e.now):
        yield format_key(st.scope, key)


def test_insert_or_get_first_entry_wins():
    e = Engine.from_text(ONE_TO_ONE)
    t = e.table
    first = t.insert("alpha", 42, 0, "lnx1", e.now)
    second = t.insert("alpha", 42, 1, "lnx2", e.now)
    assert second == first and first.last_rserver == "lnx1" and t.size == 1


def test_reload_carries_entries_and_drops_removed_rserver():
    e = Engine.from_text(ONE_TO_ONE)
    for n in range(10, 30):
        e.visit(f"127.0.0.{n}", HTTP)
    on_lnx2 = sum(1 for _, _, en in e.table.items(e.now) if en.last_rserver == "lnx2")
    assert 0 < on_lnx2 < 20
    text = ONE_TO_ONE.replace("  rserver lnx2 8080\n    buddy-group red\n    inservice\n", "")
    new_ctx = load(text).contexts["Admin"]
    carried = e.table.carry_over(new_ctx)
    assert carried.size == 20 - on_lnx2
    assert all(en.last_rserver == "lnx1" for _, _, en in carried.items(e.now))


def test_reload_drops_removed_scope():
    e = Engine.from_text(ONE_TO_ONE)
    e.visit("127.0.0.10", HTTP)
    renamed = ONE_TO_ONE.replace("buddy-group alpha", "buddy-group beta")
    assert e.table.carry_over(load(renamed).contexts["Admin"]).size == 0


def test_per_farm_rservers_are_one_byte_member_indexes():
    """Issue 11: an entry's per-farm rservers cost one byte each (member index + 1), the
    last farm one byte, the stamp four: fixed-width storage, nothing per entry on the heap."""
    e = Engine.from_text(ONE_TO_ONE)
    for n in range(10, 60):
        e.visit(f"127.0.0.{n}", HTTP)
        e.visit(f"127.0.0.{n}", HTTPS)
    s = e.table.s
    assert (s.farms.itemsize, s.last.itemsize, s.stamp.itemsize, s.width) == (1, 1, 4, 2)
    rows = {(en.farms, en.last) for _, _, en in e.table.items(e.now)}
    assert rows == {(("lnx1", "lnx1"), 1), (("lnx2", "lnx2"), 1)}
    first = [s.farms[i] for i in range(2)]
    assert first in ([1, 1], [2, 2])  # lnx1 is member 0 of both farms, lnx2 member 1


def test_table_for_context_has_every_scope():
    snap = load(ONE_TO_ONE)
    t = StickyTable.for_context(snap.contexts["Admin"])
    assert list(t.scopes) == ["alpha"]


def test_a_flow_on_an_older_configuration_never_misreads_a_reloaded_table():
    from tests.core.engine import load
    from buddylb.core.decide import Flow, decide

    e = Engine.from_text(ONE_TO_ONE)
    first = e.visit("127.0.0.10", HTTP).member.rserver
    # the reload defines the sticky groups the other way round: the scope's farm order flips
    a, b = ONE_TO_ONE.index("sticky ip-netmask"), ONE_TO_ONE.index("class-map match-all http-vip")
    cart, credit = ONE_TO_ONE[a:b].split("sticky ip-netmask 255.255.255.255 address both stick-credit")
    flipped = ONE_TO_ONE[:a] + "sticky ip-netmask 255.255.255.255 address both stick-credit" + credit + cart + ONE_TO_ONE[b:]
    new_ctx = load(flipped).contexts["Admin"]
    assert new_ctx.scopes["alpha"].farms == ("decrypted", "http")
    new_tables = {"Admin": e.table.carry_over(new_ctx)}
    old_vip = e.snap.vips[HTTPS]  # a flow that started on the old configuration
    d = decide(e.snap, e.state, new_tables, old_vip, Flow("127.0.0.10", "127.0.0.100"), e.now)
    assert d.outcome == "no_sticky" and d.entry is None
    (_, _, entry), = new_tables["Admin"].items(e.now)
    assert new_ctx.scopes["alpha"].farms[entry.last] == "http" and entry.last_rserver == first


def test_adopt_inserts_or_updates_and_keeps_open_count():
    e = Engine.from_text(ONE_TO_ONE)
    t = e.table
    got = t.adopt("alpha", 7, ("lnx2", None), 0, e.now)
    assert (got.last, got.farms, got.open, t.size) == (0, ("lnx2", None), 0, 1)
    t.opened(got)
    again = t.adopt("alpha", 7, ("lnx2", "lnx1"), 1, e.now + 5)
    assert again == got and (got.last, got.farms, got.open) == (1, ("lnx2", "lnx1"), 1)
    assert t.peek("alpha", 7, e.now + 5) == got and t.size == 1
    assert not t.forget("alpha", 7)  # held by an open connection
    t.closed("alpha", 7, got, e.now + 6)
    assert t.forget("alpha", 7) and t.size == 0 and t.peek("alpha", 7, e.now) is None


def test_peek_never_reaps_or_reorders():
    e = Engine.from_text(ONE_TO_ONE)
    t = e.table
    t.insert("alpha", 1, 0, "lnx1", e.now)
    t.insert("alpha", 2, 0, "lnx1", e.now)
    assert t.peek("alpha", 1, e.now + TIMEOUT + 1) is None
    assert t.size == 2 and t.counters.expirations == 0
    assert [k for _, k, _ in t.items(e.now)] == [1, 2]


def test_member_counts_per_farm_for_drain_previews():
    from buddylb.core.sticky_scan import member_counts

    e = Engine.from_text(ONE_TO_ONE)
    got = {}
    for n in range(10, 30):
        got[n] = e.visit(f"127.0.0.{n}", HTTP).member.rserver
        if n % 2:
            e.visit(f"127.0.0.{n}", HTTPS)  # odd clients end on farm decrypted
    http, dec = member_counts(e.table, "alpha", e.now)
    for rs in ("lnx1", "lnx2"):
        mine = [n for n, r in got.items() if r == rs]
        assert http.get(rs, [0, 0]) == [len(mine), sum(1 for n in mine if n % 2 == 0)]
        assert dec.get(rs, [0, 0]) == [sum(1 for n in mine if n % 2)] * 2
    e.now += TIMEOUT + 1
    assert member_counts(e.table, "alpha", e.now) == [{}, {}]  # expired entries are not counted


def test_a_forked_child_never_writes_into_the_parents_table():
    """Workers fork after tables exist: the slot arrays must be private (copy on write)."""
    import os

    e = Engine.from_text(ONE_TO_ONE)
    e.visit("127.0.0.10", HTTP)
    (_, key, entry), = e.table.items(e.now)
    before = (entry.farms, entry.last)
    pid = os.fork()
    if pid == 0:  # the child rewrites the entry and inserts more, then leaves at once
        try:
            e.table.adopt("alpha", key, ("lnx2", "lnx2") if before[0][0] == "lnx1" else ("lnx1", "lnx1"), 1, e.now)
            for n in range(200):
                e.table.insert("alpha", 10_000 + n, 0, "lnx1", e.now)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    (_, key2, entry2), = e.table.items(e.now)
    assert key2 == key and (entry2.farms, entry2.last) == before and e.table.s.tag[1] == 0


def test_a_close_after_a_reload_reaches_the_new_table():
    """carry_over moves open counts; the old table forwards a later close by key."""
    e = Engine.from_text(ONE_TO_ONE)
    d = e.connect("127.0.0.10", HTTP)  # stays open across the reload
    new = e.table.carry_over(load(ONE_TO_ONE).contexts["Admin"])
    e.tables["Admin"] = new
    (_, _, carried), = new.items(e.now)
    assert carried.open == 1 and d.entry is not None and not d.entry.alive and e.table is new
    e.now += TIMEOUT * 3
    assert new.lookup("alpha", d.key, e.now) is not None  # held open: never expires
    e.close(d)  # d.table is the old table: it forwards the close
    assert new.peek("alpha", d.key, e.now).open == 0
    e.now += TIMEOUT + 1
    assert new.lookup("alpha", d.key, e.now) is None  # the timeout ran from that close


def test_a_stale_handle_writes_nothing():
    e = Engine.from_text(ONE_TO_ONE)
    t = e.table
    old = t.insert("alpha", 1, 0, "lnx1", e.now)
    assert t.forget("alpha", 1)
    new = t.insert("alpha", 2, 0, "lnx2", e.now)  # reuses the freed slot
    assert new.slot == old.slot and not old.alive and new.alive
    t.opened(old)
    t.record("alpha", 1, old, 1, "lnx1", e.now)
    t.closed("alpha", 1, old, e.now)
    assert (new.open, new.farms, new.last) == (0, ("lnx2", None), 0)


def test_sweep_work_is_bounded_by_the_probe_runs_its_removals_close():
    """A sweep step ends at SWEEP_WORK x budget of work (entries visited plus key-index
    entries read to close a removal's probe run), not only at `budget` entries: one
    removal at the head of a long run of colliding keys is one step's work."""
    from buddylb.core.slots import FORM_RAW
    from buddylb.core.sticky import SWEEP_WORK

    e = small(64)
    t = e.table
    st = t.scopes["alpha"]
    tag = st.tag(FORM_RAW)
    home = t.s.home(1, 0, tag)
    colliding = [k for k in range(1, 200_000) if t.s.home(k, 0, tag) == home][:24]
    assert len(colliding) == 24
    for k in colliding:  # one probe run of 24 behind the first key's home
        assert t.insert("alpha", k, 0, "lnx1", e.now, known_absent=True) is not None
    e.now += TIMEOUT + 1
    budget = 4
    removed = t.sweep(e.now, budget)
    # the first removal reads the 23 keys behind it: 1 + 23 >= SWEEP_WORK * budget
    assert 1 + 23 >= SWEEP_WORK * budget and removed == 1
    while (n := t.sweep(e.now, budget)):
        removed += n
    assert removed == 24 and t.size == 0
    assert all(t.peek("alpha", k, e.now, live_only=False) is None for k in colliding)


def test_the_key_index_holds_a_fingerprint_beside_each_slot():
    """An index entry is slot + 1 in its low bits and bits 32 and up of the key's hash in
    the rest: a probe compares those first and reads only the records whose fingerprint
    matches (issue 11: each record read of another key was a cache miss).  Shown by
    giving a record the key of another one that shares its home: without the fingerprint
    the probe would take that record for the key."""
    from buddylb.core.slots import FORM_RAW, Slots

    s = Slots(1000, 2)
    assert s.slot_mask == 1023 and s.fp_mask == 0xFFFFFFFF ^ 1023
    tag = FORM_RAW + 1
    a = 7
    home = s.home(a, 0, tag)
    b = next(k for k in range(8, 1_000_000) if s.home(k, 0, tag) == home
             and (s.hash_key(k, 0, tag) >> 32) & s.fp_mask != (s.hash_key(a, 0, tag) >> 32) & s.fp_mask)
    slot = s.take()
    s.lo[slot] = a
    s.tag[slot] = tag
    s.place(slot)
    entry = s.index[home]
    assert entry & s.slot_mask == slot + 1
    assert entry & s.fp_mask == (s.hash_key(a, 0, tag) >> 32) & s.fp_mask
    assert s.find(a, 0, tag) == slot and s.find(b, 0, tag) == -1
    s.lo[slot] = b  # the record now says b, its index entry still carries a's fingerprint
    assert s.find(b, 0, tag) == -1 and s.find(a, 0, tag) == -1
    s.lo[slot] = a
    assert s.unplace(slot) == 0 and s.index[home] == 0 and s.find(a, 0, tag) == -1
