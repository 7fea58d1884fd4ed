"""The proxy bench's rounds (bench/rounds.py, bench/proxy.py): the balancers take turns in
mirrored rounds, and a scenario's figures are the sum of real runs.  One real run of one
scenario (nginx, buddylb, HAProxy and the ceiling relay, wrk) with tiny bounds; no timing
assertions: the checks are on how the runs add up and on the turn order."""
from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

from bench import proxy, report, rounds, tools

PROGRAMS = {n: tools.find_program(n) for n in ("haproxy", "nginx", "wrk")}


def test_mirrored_rounds_give_every_balancer_the_same_mean_turn():
    """With an even number of rounds each balancer's runs sit at the same mean time, so a
    drift linear in time falls on all alike (bench.rounds' reason to exist)."""
    kinds = list(proxy.BALANCERS)
    for n in (2, 4):
        turns = [(i * len(kinds) + pos, kind) for i in range(n) for pos, kind in enumerate(rounds.order(kinds, i))]
        means = {k: sum(t for t, kk in turns if kk == k) / n for k in kinds}
        assert len(set(means.values())) == 1, means
    assert rounds.order(kinds, 1) == kinds[::-1] and rounds.order(kinds, 2) == kinds
    assert rounds.round_seconds(10, 2) == 5 and rounds.round_seconds(3, 2) == 2 and rounds.round_seconds(1, 4) == 1


def _pids_of_relay(workdir: Path) -> list[int]:
    """The ceiling relay this test's bench started (its --ready file is under `workdir`)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if b"bench.relay" in cmd and str(workdir).encode() in cmd:
            out.append(int(d))
    return out


@pytest.mark.skipif(not all(PROGRAMS.values()), reason="haproxy, nginx and wrk are needed (make bench installs them)")
def test_a_scenario_in_rounds_adds_up_its_runs_and_survives_a_balancer_that_dies(tmp_path):
    """l4-keepalive in 2 rounds of 1 s: buddylb and HAProxy run both rounds in mirrored order,
    their figures are the totals of their runs; the ceiling is killed before its second turn
    and is recorded as dead while the others go on."""
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="buddylb-bench-") as tmp:  # nginx workers must read it: not tmp_path
        workdir = Path(tmp)

        def log(msg: str) -> None:
            lines.append(msg)
            if msg == "proxy: ceiling l4-keepalive round 2/2":
                for pid in _pids_of_relay(workdir):
                    os.kill(pid, signal.SIGKILL)

        out = proxy.run_proxy(["l4-keepalive"], workdir, tmp_path, PROGRAMS, 2, None, log, rounds=2)
    runs = out["scenarios"]["l4-keepalive"]
    assert out["settings"]["rounds"] == 2 and out["settings"]["round_seconds"] == 1
    for kind, positions in (("buddylb", [1, 3]), ("haproxy", [2, 2])):
        agg = runs[kind]
        each = agg["rounds"]
        assert [r["round"] for r in each] == [1, 2] and [r["position"] for r in each] == positions
        assert all(r["requests"] > 0 and r["alive_after"] for r in each) and agg["alive_after"]
        assert agg["requests"] == sum(r["requests"] for r in each)
        assert agg["seconds"] == pytest.approx(sum(r["seconds"] for r in each), rel=0.01)  # wrk's own durations
        assert agg["requests_per_s"] == pytest.approx(agg["requests"] / agg["seconds"])
        assert min(r["requests_per_s"] for r in each) * 0.99 <= agg["requests_per_s"]
        assert agg["requests_per_s"] <= max(r["requests_per_s"] for r in each) * 1.01  # wrk rounds its rate
        cpu = sum(r["balancer_cpu_s"] for r in each)
        assert agg["balancer_cpu_us_per_request"] == pytest.approx(1e6 * cpu / agg["requests"])
        assert agg["balancer_cpu_pct"] == pytest.approx(100 * cpu / sum(r["wall_s"] for r in each))
        assert all(r["idle_balancers_cpu_s"] >= 0 for r in each) and agg["idle_balancers_cpu_pct"] is not None
        assert out["balancers"][f"{kind}-l4"]["returncode"] is not None  # stopped
        assert out["balancers"][f"{kind}-l4"]["sticky"]["entries"] == 1  # asked after the runs: one client
    dead = runs["ceiling"]
    assert [(r["round"], r["position"]) for r in dead["rounds"]] == [(1, 3), (2, 1)]
    assert dead["rounds"][0]["alive_after"] and not dead["rounds"][1]["alive_after"] and dead["alive_after"] is False
    assert dead["rounds"][1]["requests"] == 0 and dead["rounds"][1]["errors"]  # wrk found nobody
    assert out["balancers"]["ceiling-l4"]["returncode"] == -signal.SIGKILL
    assert "sticky" not in out["balancers"]["ceiling-l4"]
    assert "proxy: ceiling died during l4-keepalive, round 2" in lines

    meta = {"machine": {"date": "d", "cpu": "c", "cores": 2, "kernel": "k", "python": "3"}, "mode": "quick",
            "wall_s": 1.0, "versions": {}}
    text = report.render({"meta": meta, "sections": {
        "proxy-settings": out["settings"], "scenario:l4-keepalive": runs | {"measured": {"date": "d"}}}})
    b, h = runs["buddylb"]["rounds"], runs["haproxy"]["rounds"]
    per_round = " · ".join(f"{x['requests_per_s'] / y['requests_per_s']:.2f}×" for x, y in zip(b, h))
    assert f"| req/s by round | {b[0]['requests_per_s']:,.0f} · {b[1]['requests_per_s']:,.0f} |" in text
    assert per_round in text and "the order reversed every other round" in text
    summary = ", ".join(f"{x['requests_per_s'] / y['requests_per_s']:.2f}" for x, y in zip(b, h))
    assert "by round (÷ HAProxy; ÷ ceiling)" in text and f"| {summary}; " in text
    assert "| balancer alive after the run | yes | yes | **no** |" in text


@pytest.mark.skipif(not all(PROGRAMS.values()) or tools.find_program("h2load") is None,
                    reason="haproxy, nginx, wrk and h2load are needed (make bench installs them)")
def test_h2_rounds_alternate_buddylb_and_haproxy_and_count_only_the_measured_seconds(tmp_path):
    """The ceiling has no HTTP/2: h2-keepalive's rounds are buddylb, HAProxy; HAProxy, buddylb.
    The measured h2load run has no warm-up of its own, so the CPU counted around it is its
    requests' alone: its measured seconds are the round's, not one more."""
    with tempfile.TemporaryDirectory(prefix="buddylb-bench-") as tmp:
        programs = PROGRAMS | {"h2load": tools.find_program("h2load")}
        out = proxy.run_proxy(["h2-keepalive"], Path(tmp), tmp_path, programs, 2, None, lambda m: None, rounds=2)
    runs = out["scenarios"]["h2-keepalive"]
    assert set(runs) == {"buddylb", "haproxy"}
    assert [(r["round"], r["position"]) for r in runs["buddylb"]["rounds"]] == [(1, 1), (2, 2)]
    assert [(r["round"], r["position"]) for r in runs["haproxy"]["rounds"]] == [(1, 2), (2, 1)]
    for agg in runs.values():
        assert agg["requests"] > 0 and "--warm-up-time=0" in agg["wrk"]
        for r in agg["rounds"]:
            assert r["requests"] > 0 and r["seconds"] < 1.5 and r["wall_s"] < 1.9  # -D 1, no warm-up inside
    assert out["balancers"]["ceiling-l7"]["returncode"] is not None  # up for the config, stopped with it
