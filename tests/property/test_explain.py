"""The explain view says what the data path does next (SPEC §3, issue 18).

A Hypothesis state machine drives one engine through random states — clients visiting
two buddied farms (connections left open or closed), rservers failing, recovering and
taken out of service, the clock moving past the timeout — and before every decision
asks `show sticky client` what the client's next request to that VIP gets.  The
decision that follows must have the same outcome, be served by the same farm (the
sticky group's backup farm included) and reach the same rserver, `no_server` included.
"""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from buddylb.admin.explain import show_sticky_client
from tests.core.configs import HTTP, HTTPS, ONE_TO_ONE
from tests.core.engine import Engine, load

BACKUP = ONE_TO_ONE.replace(
    "rserver host lnx2\n", "rserver host lnx3\n  ip address 127.0.1.13\n  inservice\n"
    "rserver host lnx4\n  ip address 127.0.1.14\n  inservice\nrserver host lnx2\n", 1,
).replace(
    "serverfarm host decrypted\n",
    "serverfarm host sorry\n  predictor hash address source\n"
    "  rserver lnx3 8081\n    inservice\n  rserver lnx4 8081\n    buddy-group red\n    inservice\n"
    "serverfarm host decrypted\n  predictor leastconns\n", 1,
).replace(
    "  serverfarm http\n  buddy-group alpha", "  serverfarm http backup sorry\n  buddy-group alpha", 1,
).replace("  timeout 30\n", "  timeout 1\n")  # one minute: the clock steps can expire entries

_SNAP = load(BACKUP)
CLIENTS = [f"127.0.0.{n}" for n in range(10, 16)]
MEMBERS = [(f.name, m.rserver) for f in _SNAP.contexts["Admin"].farms.values() for m in f.members]
VIPS = {HTTP: "http", HTTPS: "decrypted"}


class ExplainMatchesDecide(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.e = Engine(_SNAP)
        self.open: list = []
        self.checked = 0

    @rule(c=st.sampled_from(CLIENTS), vip=st.sampled_from(list(VIPS)), keep=st.booleans())
    def visit(self, c, vip, keep):
        d = self.e.connect(c, vip)
        if keep and d.member is not None:
            self.open.append(d)
        else:
            self.e.close(d)

    @rule(data=st.data())
    def close_one(self, data):
        if self.open:
            self.e.close(self.open.pop(data.draw(st.integers(0, len(self.open) - 1))))

    @rule(member=st.sampled_from(MEMBERS), up=st.booleans())
    def probe(self, member, up):
        (self.e.up if up else self.e.down)("Admin", *member)

    @rule(rserver=st.sampled_from(["lnx1", "lnx2", "lnx3", "lnx4"]), inservice=st.booleans())
    def admin(self, rserver, inservice):
        self.e.state.set_admin_inservice("Admin", rserver, inservice)

    @rule(dt=st.sampled_from([1.0, 30.0, 61.0]))
    def advance(self, dt):
        self.e.now += dt

    @rule(c=st.sampled_from(CLIENTS), vip=st.sampled_from(list(VIPS)))
    def explain_then_decide(self, c, vip):
        scopes = show_sticky_client(self.e.snap, self.e.state, self.e.tables, self.e.now, c, context="Admin")
        (alpha,) = [s for s in scopes if s["scope"] == "alpha"]
        (said,) = [f for f in alpha["serverfarms"] if f["serverfarm"] == VIPS[vip]]
        d = self.e.connect(c, vip)
        got = (d.outcome, d.farm.name if d.member else None, d.member.rserver if d.member else None)
        assert got == (said["outcome"], said["served_by"], said["next_rserver"]), (said, d.rule)
        if said["rserver"] is not None:
            assert said["rserver"] == said["next_rserver"] and said["candidates"] == []
        self.e.close(d)


TestExplainMatchesDecide = ExplainMatchesDecide.TestCase
TestExplainMatchesDecide.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
