"""The compact sticky table against a dict model (issue 11).

Same operations on both — insert-or-get, lookup, record, open, close, clock steps,
bounded sweeps, forget — over two scopes at a tiny capacity, so evictions happen all
the time, with keys of every storage form: IPv4, `address both` IPv4 pairs, IPv6
(two words, including values that differ only in the high word), and keys that have
no fixed-width form (cookie strings, session bytes, `both` with IPv6).  After every
step the visible entries, their fields and the exact least-recently-active order of
idle entries must match the model.
"""
from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from buddylb.core.sticky import StickyTable
from buddylb.core.sticky_scan import scan
from tests.core.configs import TIERS, _vips
from tests.core.engine import load

CAP = 5
TIMEOUT = 60.0
SOLO = "sticky ip-netmask 255.255.255.255 address source s-solo\n  timeout 1\n  serverfarm web\n"
_TEXT = TIERS.replace("  timeout 30\n", "  timeout 1m\n")
_TEXT = _TEXT[:_TEXT.index("class-map")] + SOLO + _vips(("v-web", 80, "s-web"), ("v-app", 9000, "s-app"),
                                                         ("v-solo", 81, "s-solo"))
_SNAP = load(_TEXT.replace("service-policy input int", f"sticky-table max-entries {CAP}\nservice-policy input int"))
SCOPES = {"tiers": [["lnx1", "lnx2", "lnx3", "lnx4"], ["db1", "db2"]], "s-solo": [["lnx1", "lnx2", "lnx3", "lnx4"]]}
KEYS = [
    0, 0x7F000001, 0xFFFFFFFF,  # IPv4
    (1 << 64) | (0x7F000001 << 32) | 0x7F000064,  # address both, IPv4
    (1 << 130) | 1, (1 << 130) | (1 << 64) | 1, (1 << 130) | ((1 << 128) - 1),  # IPv6, high word matters
    "cookie-a", b"\x01\x02\x03", (5 << 131) | ((1 << 130) | 7),  # no fixed-width form
]


class CompactModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = StickyTable.for_context(_SNAP.contexts["Admin"])
        self.now = 0.0
        self.seq = 0
        self.model: dict[tuple[str, object], list] = {}  # -> [last, farms, open, stamp, seq]

    def _live(self) -> dict:
        return {k: v for k, v in self.model.items() if not (v[2] == 0 and self.now >= v[3] + TIMEOUT)}

    def _touch(self, v: list) -> None:
        self.seq += 1
        v[3], v[4] = self.now, self.seq

    @rule(scope=st.sampled_from(sorted(SCOPES)), k=st.sampled_from(KEYS), data=st.data())
    def insert(self, scope, k, data):
        fi = data.draw(st.integers(0, len(SCOPES[scope]) - 1))
        rs = data.draw(st.sampled_from(SCOPES[scope][fi]))
        live = self._live()
        got = self.table.insert(scope, k, fi, rs, self.now)
        if (scope, k) in live:
            assert got is not None and got.last == live[(scope, k)][0]
            return
        self.model = live
        if len(live) >= CAP:
            victim = self._victim(live)
            if victim is None:
                assert got is None
                return
            del self.model[victim]
        assert got is not None
        farms = [None] * len(SCOPES[scope])
        farms[fi] = rs
        self.seq += 1
        self.model[(scope, k)] = [fi, farms, 0, self.now, self.seq]

    def _victim(self, live: dict):
        """The table's rule: each scope's least recently active idle entry; across
        scopes the oldest stamp (ticks of 1/8 s), ties to the scope defined first."""
        heads = []
        for sid, st_ in enumerate(self.table.scopes.values()):
            idle = [(v[4], key) for key, v in live.items() if key[0] == st_.scope.name and v[2] == 0]
            if idle:
                key = min(idle)[1]
                heads.append((math.ceil(live[key][3] * 8), sid, key))
        return min(heads)[2] if heads else None

    @rule(scope=st.sampled_from(sorted(SCOPES)), k=st.sampled_from(KEYS))
    def lookup(self, scope, k):
        e = self.table.lookup(scope, k, self.now)
        live = self._live()
        if (scope, k) in live:
            v = live[(scope, k)]
            assert e is not None and (e.last, list(e.farms), e.open) == (v[0], v[1], v[2])
        else:
            assert e is None
            self.model.pop((scope, k), None)

    @rule(scope=st.sampled_from(sorted(SCOPES)), k=st.sampled_from(KEYS), data=st.data())
    def record(self, scope, k, data):
        e = self.table.lookup(scope, k, self.now)
        live = self._live()
        if (scope, k) not in live:
            self.model.pop((scope, k), None)
            return
        fi = data.draw(st.integers(0, len(SCOPES[scope]) - 1))
        rs = data.draw(st.sampled_from(SCOPES[scope][fi]))
        self.table.record(scope, k, e, fi, rs, self.now)
        v = self.model[(scope, k)]
        v[0] = fi
        v[1][fi] = rs
        self._touch(v)

    @rule(scope=st.sampled_from(sorted(SCOPES)), k=st.sampled_from(KEYS))
    def open(self, scope, k):
        e = self.table.lookup(scope, k, self.now)
        if (scope, k) in self._live():
            self.table.opened(e)
            self.model[(scope, k)][2] += 1
        else:
            self.model.pop((scope, k), None)

    @precondition(lambda self: any(v[2] for v in self.model.values()))
    @rule(data=st.data())
    def close(self, data):
        sk = data.draw(st.sampled_from(sorted((k for k, v in self.model.items() if v[2]), key=repr)))
        e = self.table.peek(sk[0], sk[1], self.now)
        self.table.closed(sk[0], sk[1], e, self.now)
        v = self.model[sk]
        v[2] -= 1
        self._touch(v)

    @rule(scope=st.sampled_from(sorted(SCOPES)), k=st.sampled_from(KEYS))
    def forget(self, scope, k):
        v = self._live().get((scope, k))
        gone = self.table.forget(scope, k)
        if v is None:  # absent, or expired: swept already or not, it is gone either way
            self.model.pop((scope, k), None)
            return
        assert gone == (v[2] == 0)
        if gone:
            del self.model[(scope, k)]

    @rule(dt=st.sampled_from([1.0, 10.0, 59.0, 61.0]))
    def advance(self, dt):
        self.now += dt

    @rule(budget=st.integers(1, 8))
    def sweep(self, budget):
        self.table.sweep(self.now, budget)

    @invariant()
    def visible_entries_match(self):
        seen = [(st_.scope.name, k, e) for st_, k, e in self.table.items(self.now)]
        live = self._live()
        assert {(s, k) for s, k, _ in seen} == set(live)
        for s, k, e in seen:
            v = live[(s, k)]
            assert (e.last, list(e.farms), e.open) == (v[0], v[1], v[2])
        for scope in SCOPES:  # exact LRU order over idle entries
            idle = [k for s, k, e in seen if s == scope and e.open == 0]
            assert idle == [k for (s, k), v in sorted(live.items(), key=lambda kv: kv[1][4])
                            if s == scope and v[2] == 0]
        assert self.table.size <= CAP
        page, cursor = scan(self.table, 0, 100, self.now)
        assert cursor is None and {(s.scope.name, k) for s, k, _ in page} == set(live)


TestCompactModel = CompactModel.TestCase
TestCompactModel.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
