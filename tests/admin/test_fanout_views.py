"""The dashboard's merge rules under `--workers N` (admin.fanout), on plain data."""
from __future__ import annotations

from buddylb.admin.fanout import _events, _series, merge, windows


def test_windows_walk_the_workers_tables_one_after_the_other() -> None:
    assert windows([5, 0, 4], 0, 3) == [(0, 0, 3)]
    assert windows([5, 0, 4], 3, 4) == [(0, 3, 2), (2, 0, 2)]
    assert windows([5, 0, 4], 8, 50) == [(2, 3, 1)]
    assert windows([5, 0, 4], 9, 50) == []
    pieces = [p for off in range(0, 9, 2) for p in windows([5, 0, 4], off, 2)]
    assert sum(n for _, _, n in pieces) == 9  # every row once


def test_rate_series_are_summed_per_sample_interval() -> None:
    w0 = {"t": [100.2, 105.1, 110.3], "requests": [1.0, 2.0, 3.0], "connections": [0.0, 0.0, 0.0],
          "decisions": {"new": [1.0, 2.0, 3.0]}}
    w1 = {"t": [104.9, 109.7], "requests": [10.0, 20.0], "connections": [1.0, 1.0],
          "decisions": {"sticky_hit": [5.0, 5.0]}}
    out = _series([w0, w1], 5.0)
    assert out["t"] == [100.0, 105.0, 110.0]  # 104.9 falls in [100, 105) with 100.2, 109.7 in [105, 110)
    assert out["requests"] == [11.0, 22.0, 3.0] and out["connections"] == [1.0, 1.0, 0.0]
    assert out["decisions"] == {"new": [1.0, 2.0, 3.0], "sticky_hit": [5.0, 5.0, 0.0]}


def test_events_of_every_worker_newest_first() -> None:
    merged = _events([[{"ts": 3.0, "kind": "reload", "text": "a"}], [{"ts": 5.0, "kind": "probe", "text": "b"},
                                                                      {"ts": 1.0, "kind": "reload", "text": "c"}]])
    assert [(e["worker"], e["text"]) for e in merged] == [(1, "b"), (0, "a"), (1, "c")]


def test_map_sums_connections_and_buddy_hits_and_keeps_worker_0_states() -> None:
    def one(conns: int, hits: float, state: str) -> dict:
        return {"Admin": {"serverfarms": [{"serverfarm": "http", "rservers": [
            {"rserver": "lnx1", "state": state, "connections": conns}]}],
            "buddy_real_groups": [{"name": "blue", "buddy_hits_per_s": {"http": hits}}], "scopes": []}}
    out = merge("dashboard/map", [one(2, 0.5, "DRAINING"), one(3, 1.25, "OPERATIONAL")])
    (m,) = out["Admin"]["serverfarms"][0]["rservers"]
    assert (m["connections"], m["state"]) == (5, "DRAINING")
    assert out["Admin"]["buddy_real_groups"][0]["buddy_hits_per_s"] == {"http": 1.75}


def test_probe_rows_join_every_workers_verdict_and_history() -> None:
    def row(state: str, fails: int, ts: list[float]) -> dict:
        return {"context": "Admin", "probe": "TCP", "serverfarm": "http", "rserver": "lnx1", "state": state,
                "consecutive_failures": fails, "checks": len(ts),
                "history": [{"ts": t, "result": "success" if state == "UP" else "failure"} for t in ts]}
    (out,) = merge("show/probe", [[row("UP", 0, [1.0, 3.0])], [row("DOWN", 2, [2.0, 4.0])]])
    assert (out["state"], out["states"], out["consecutive_failures"], out["checks"]) == ("DOWN", ["UP", "DOWN"], 2, 4)
    assert [(h["ts"], h["worker"]) for h in out["history"]] == [(1.0, 0), (2.0, 1), (3.0, 0), (4.0, 1)]
