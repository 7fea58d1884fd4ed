"""`show impact rserver` (the drain preview) against a real `buddylb run`: its numbers
come true when the rserver is then taken out and its clients come back (issue 14)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from buddylb.demo.net import CLIENTS
from buddylb.demo.scenario import affected_by, cart_steps, drive, tiers_steps
from tests.support.demo_stack import demo_stack

pytestmark = pytest.mark.e2e


def _row(preview: dict, context: str, farm: str) -> dict:
    (row,) = [r for r in preview["serverfarms"] if (r["context"], r["serverfarm"]) == (context, farm)]
    return row


def test_drain_preview_numbers_come_true() -> None:
    with demo_stack() as stack:
        clients = list(CLIENTS)
        cart = drive(stack.log, "cart", clients, cart_steps(stack.ports))
        tiers = drive(stack.log, "tiers", clients, tiers_steps(stack.ports))
        hit_cart, hit_tiers = affected_by(cart, "lnx1"), affected_by(tiers, "lnx1")
        assert hit_cart and hit_tiers

        preview = stack.call("GET", ["show", "impact", "rserver", "lnx1"])
        http, web = _row(preview, "Admin", "http"), _row(preview, "tiers", "web")
        assert http["entries"] == len(hit_cart) and web["entries"] == len(hit_tiers)
        # Admin: lnx1 is the only blue member of farm http, so its clients re-stick on lnx2;
        # tiers: lnx2 is blue too, so lnx1's web clients follow their buddy there
        assert (http["restick"], http["follow_buddy"]) == (len(hit_cart), 0)
        assert (web["follow_buddy"], web["restick"]) == (len(hit_tiers), 0)
        assert preview["totals"]["entries"] == sum(r["entries"] for r in preview["serverfarms"])
        one = stack.call("GET", ["show", "impact", "rserver", "lnx1"], farm="web")
        assert [r["serverfarm"] for r in one["serverfarms"]] == ["web"]
        text = subprocess.run([sys.executable, "-m", "buddylb", "show", "impact", "rserver", "lnx1", "farm", "web",
                               "--admin", stack.lb.admin], capture_output=True, text=True, timeout=30)
        assert text.returncode == 0, text.stderr
        assert text.stdout.startswith(f"impact of rserver lnx1 out of service: {len(hit_tiers)} entries name it; "
                                      f"{len(hit_tiers)} follow a buddy, 0 re-stick")

        stack.call("POST", ["set", "rserver", "lnx1"], {"inservice": False})
        again_cart = drive(stack.log, "cart", [w.client for w in hit_cart], cart_steps(stack.ports))
        again_tiers = drive(stack.log, "tiers", [w.client for w in hit_tiers], tiers_steps(stack.ports))

        for row, walks in ((http, again_cart), (web, again_tiers)):
            first = [w.visits[0] for w in walks]  # the preview speaks of each client's next request there
            landed = Counter(v.rserver for v in first)
            # one candidate each here (rule 4's buddy, rule 5's only survivor): exact numbers
            assert dict(landed) == row["to"] == {"lnx2": len(walks)}, (row, landed)
            outcomes = Counter(v.outcome for v in first)
            assert outcomes["buddy_hit"] == row["follow_buddy"] and outcomes["restick"] == row["restick"]
