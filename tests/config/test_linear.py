"""Checking and compiling a configuration is linear in its size (issue 13 item 6).

A 20k-member farm once took 14 s to check because each new member scanned the farm's
members for a duplicate. Wall-clock limits make flaky tests on a shared machine, so this
counts work instead: the Python lines executed (sys.settrace line events) while parsing,
validating and compiling farms of N and 4N members. Linear work grows 4x (less, with the
fixed part of the file); a scan per member grows 16x. The wall-clock figure for 20k
members is `python -m soak.attacks --only huge-farm` (RELIABILITY.md).
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from buddylb.config.parser import check_text
from buddylb.core.compile import compile_config


def farm_config(members: int) -> str:
    """`members` rservers in two farms (a buddy real group joins each pair), sticky, two VIPs."""
    out = []
    for i in range(members):
        out.append(f"rserver host r{i}\n  ip address 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n"
                   "  weight 5\n  inservice\n")
    for farm in ("web", "tls"):
        out.append(f"serverfarm host {farm}\n  predictor leastconns\n")
        out += [f"  rserver r{i} 8080\n    buddy-group g{i}\n    inservice\n" for i in range(members)]
    out.append("sticky ip-netmask 255.255.255.255 address source s-web\n  serverfarm web\n"
               "sticky ip-netmask 255.255.255.255 address source s-tls\n  serverfarm tls\n"
               "class-map match-all web-vip\n  2 match virtual-address 127.0.0.100 tcp eq 8080\n"
               "class-map match-all tls-vip\n  2 match virtual-address 127.0.0.100 tcp eq 8443\n"
               "policy-map type loadbalance first-match web-pol\n  class class-default\n"
               "    sticky-serverfarm s-web\n"
               "policy-map type loadbalance first-match tls-pol\n  class class-default\n"
               "    sticky-serverfarm s-tls\n"
               "policy-map multi-match int\n  class web-vip\n    loadbalance vip inservice\n"
               "    loadbalance policy web-pol\n  class tls-vip\n    loadbalance vip inservice\n"
               "    loadbalance policy tls-pol\n"
               "service-policy input int\n")
    return "".join(out)


def lines_executed(text: str) -> int:
    """Python line events while `text` is parsed, validated and compiled."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        cfg, diagnostics = check_text(text, "linear.cfg", Path("/nonexistent-config-dir"))
        snap = compile_config(cfg)
    finally:
        sys.settrace(None)
    assert not [d for d in diagnostics if d.severity == "error"], diagnostics[:3]
    assert len(snap.contexts["Admin"].farms["web"].members) == text.count("    buddy-group") // 2
    return count


def test_check_and_compile_grow_linearly_with_the_farm() -> None:
    small, large = lines_executed(farm_config(300)), lines_executed(farm_config(1200))
    assert small > 300 * 10  # the counter sees the per-member work
    assert large <= 4.2 * small, f"{small:,} lines for 300 members, {large:,} for 1200: not linear"
