"""Quick versions of the soak's memory pieces (`make soak` runs them at full size):
the sticky table holds its capacity with exact LRU eviction, and a buddylb process
serves and holds many idle L4 connections.  Correctness only, no timing."""
from __future__ import annotations

from soak.idle_l4 import idle_connections
from soak.sticky_memory import capacity_lru


def test_sticky_table_at_capacity_evicts_exactly_the_least_recently_used():
    run = capacity_lru(clients=20_000, capacity=10_000, sample=500)
    assert run.size == 10_000 and run.evictions == 10_000
    assert run.boundary_exact and run.sample_present == run.sample_absent == 500
    assert run.touched_kept, "a refreshed entry was evicted before an older one"


def test_five_hundred_idle_l4_connections_are_all_served_and_held(tmp_path):
    run = idle_connections(500, workdir=tmp_path)
    assert run.served == 500 and run.echo_ok == run.echo_sample == 100, run.as_dict()
