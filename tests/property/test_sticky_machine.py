"""Hypothesis state machines.

1. The sticky table against a plain dict model under a fake clock (insert, lookup,
   record, open, close, advance time, capacity eviction).
2. The buddy invariant: while the servers it uses stay available, a client's
   connections within one buddy sticky scope always land in one buddy real group.
"""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.core.configs import TIERS
from tests.core.engine import Engine, load
from buddylb.core.sticky import StickyTable

CAP = 4
TIMEOUT = 60.0
KEYS = st.integers(min_value=0, max_value=7)
RS = (("lnx1", "lnx3"), ("db1", "db2"))  # two members of each farm of scope tiers (web, app)

_SNAP = load(
    TIERS.replace("  timeout 30\n", "  timeout 1m\n").replace(
        "service-policy input int", f"sticky-table max-entries {CAP}\nservice-policy input int"
    )
)


class StickyModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = StickyTable.for_context(_SNAP.contexts["Admin"])
        self.now = 0.0
        self.seq = 0
        # key -> [last, farms(list), open, stamp, seq]
        self.model: dict[int, list] = {}

    def _live(self) -> dict[int, list]:
        return {k: v for k, v in self.model.items() if not (v[2] == 0 and self.now >= v[3] + TIMEOUT)}

    def _touch(self, v: list) -> None:
        self.seq += 1
        v[3], v[4] = self.now, self.seq

    @rule(k=KEYS, farm=st.integers(0, 1), rs=st.integers(0, 1))
    def insert(self, k, farm, rs):
        rs = RS[farm][rs]
        live = self._live()
        got = self.table.insert("tiers", k, farm, rs, self.now)
        if k in live:
            assert got is not None and got.last == live[k][0]
            return
        self.model = live
        if len(live) >= CAP:
            idle = [(v[4], key) for key, v in live.items() if v[2] == 0]
            if not idle:
                assert got is None
                return
            del self.model[min(idle)[1]]
        assert got is not None
        farms = [None, None]
        farms[farm] = rs
        self.seq += 1
        self.model[k] = [farm, farms, 0, self.now, self.seq]

    @rule(k=KEYS)
    def lookup(self, k):
        e = self.table.lookup("tiers", k, self.now)
        live = self._live()
        if k in live:
            v = live[k]
            assert e is not None and (e.last, list(e.farms), e.open) == (v[0], v[1], v[2])
        else:
            assert e is None
            self.model.pop(k, None)

    @rule(k=KEYS, farm=st.integers(0, 1), rs=st.integers(0, 1))
    def record(self, k, farm, rs):
        rs = RS[farm][rs]
        e = self.table.lookup("tiers", k, self.now)
        live = self._live()
        if k not in live:
            return
        self.table.record("tiers", k, e, farm, rs, self.now)
        v = self.model[k]
        v[0] = farm
        v[1][farm] = rs
        self._touch(v)

    @rule(k=KEYS)
    def open(self, k):
        e = self.table.lookup("tiers", k, self.now)
        if k in self._live():
            self.table.opened(e)
            self.model[k][2] += 1

    @precondition(lambda self: any(v[2] for v in self.model.values()))
    @rule(data=st.data())
    def close(self, data):
        k = data.draw(st.sampled_from(sorted(k for k, v in self.model.items() if v[2])))
        e = self.table.peek("tiers", k, self.now, live_only=False)
        self.table.closed("tiers", k, e, self.now)
        v = self.model[k]
        v[2] -= 1
        self._touch(v)

    @rule(dt=st.sampled_from([1.0, 10.0, 59.0, 61.0]))
    def advance(self, dt):
        self.now += dt

    @rule(budget=st.integers(1, 8))
    def sweep(self, budget):
        self.table.sweep(self.now, budget)

    @invariant()
    def visible_entries_match(self):
        seen = {k for _, k, _ in self.table.items(self.now)}
        assert seen == set(self._live())
        assert self.table.size <= CAP


TestStickyModel = StickyModel.TestCase
TestStickyModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


CLIENTS = [f"127.0.0.{n}" for n in range(10, 16)]
WEB, APP = ("127.0.0.100", 80), ("127.0.0.100", 9000)


class BuddyInvariant(RuleBasedStateMachine):
    """Clients hop between the web and app tiers while servers fail and recover."""

    def __init__(self) -> None:
        super().__init__()
        self.e = Engine(load(TIERS))
        self.group_of: dict[str, str] = {}

    @rule(c=st.sampled_from(CLIENTS), vip=st.sampled_from([WEB, APP]))
    def visit(self, c, vip):
        d = self.e.visit(c, vip)
        if d.member is None:
            return
        prev = self.group_of.get(c)
        if prev is not None:
            farm = self.e.snap.contexts["Admin"].farms[d.farm.name]
            # the client's buddy real group still has an available member here: it must be used
            if any(m.buddy_group == prev and self.e.state.available(m) for m in farm.members):
                assert d.member.buddy_group == prev, (c, d.outcome, d.rule)
        self.group_of[c] = d.member.buddy_group

    @rule(farm=st.sampled_from(["web", "app"]), data=st.data())
    def fail(self, farm, data):
        members = self.e.snap.contexts["Admin"].farms[farm].members
        m = data.draw(st.sampled_from(members))
        self.e.down("Admin", farm, m.rserver)

    @rule(farm=st.sampled_from(["web", "app"]), data=st.data())
    def recover(self, farm, data):
        members = self.e.snap.contexts["Admin"].farms[farm].members
        m = data.draw(st.sampled_from(members))
        self.e.up("Admin", farm, m.rserver)


TestBuddyInvariant = BuddyInvariant.TestCase
TestBuddyInvariant.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
