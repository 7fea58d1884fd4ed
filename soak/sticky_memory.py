"""The sticky database at scale, in-process through the public `Balancer` object.

Clients are decided with distinct source addresses (10.0.0.0/8) via `Balancer.decide`
and released via `Balancer.closed`, exactly what the data path does per connection,
without sockets.  Two checks:

- capacity and LRU: N clients into a table of capacity C < N: it stays at C, evicts
  N - C, and what it evicted is exactly the least recently used (boundary checked
  client by client, a sample elsewhere; touched entries survive the next evictions);
- memory: VmRSS before and after E entries, then during and after K more insert/evict
  cycles at capacity (sampled 12 times): RSS after the cycles must be within 1.25x of
  the full table's, and must not trend upwards (the last third of the samples stays
  under the peak of the first two thirds: bounded, no leak).  The peak is reported too:
  CPython sizes a dict that sees deletions and insertions for 3x its live entries, so
  the table's hash index grows one step during the first cycles, then stays.

`python -m soak.sticky_memory lru N C` / `rss E K` runs one check in a fresh process
and prints its figures as JSON (`soak.run` does this so RSS is not skewed).
"""
from __future__ import annotations

import gc
import ipaddress
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from buddylb.core.decide import Flow
from buddylb.core.snapshot import Vip
from buddylb.io.runtime import Balancer
from tests.e2e.configs import farm, hosts, service, sticky_ip, vip_policy

VIP_PORT = 8080


def client_address(n: int) -> str:
    """The n-th distinct client (n < 2**24): 10.0.0.0 + n."""
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def client_key(n: int) -> int:
    """Its sticky key in a /32 source scope (the address as an integer)."""
    return int(ipaddress.IPv4Address(client_address(n)))


def write_config(path: Path, capacity: int, rservers: tuple[str, ...] = ("lnx1", "lnx2")) -> None:
    text = f"sticky-table max-entries {capacity}\n" + hosts(*rservers)
    text += farm("web", [(rs, VIP_PORT, None) for rs in rservers])
    text += sticky_ip("stick", "web", None)
    path.write_text(text + service(vip_policy("web-vip", VIP_PORT, "stick", http=True)))


def build_balancer(path: Path, capacity: int, rservers: tuple[str, ...] = ("lnx1", "lnx2")) -> tuple[Balancer, Vip]:
    write_config(path, capacity, rservers)
    b = Balancer(path, b"s" * 32)
    return b, next(iter(b.snapshot.vips.values()))


def decide_clients(b: Balancer, vip: Vip, numbers: Iterable[int], record: bool = True) -> dict[int, str]:
    """One connection per client, opened and closed; returns client -> rserver if `record`."""
    placed: dict[int, str] = {}
    decide, closed, address = b.decide, b.closed, vip.address
    for n in numbers:
        d = decide(vip, Flow(client_address(n), address))
        if record:
            placed[n] = d.member.rserver  # type: ignore[union-attr]
        closed(d)
    return placed


def vm_rss() -> int:
    """This process's resident set size in bytes (/proc/self/status VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class LruRun:
    clients: int
    capacity: int
    size: int
    evictions: int
    boundary_exact: bool  # the oldest kept client is exactly `clients - capacity`
    sample_present: int  # of the sampled recent clients, how many are present
    sample_absent: int  # of the sampled old clients, how many are gone
    sample: int
    touched_kept: bool  # refreshed old entries survive the next evictions, the next oldest go
    seconds: float

    @property
    def ok(self) -> bool:
        return (self.size == self.capacity and self.evictions == self.clients - self.capacity
                and self.boundary_exact and self.sample_present == self.sample
                and self.sample_absent == self.sample and self.touched_kept)

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


class _Present:
    """`key in entries`: the table holds an entry for the key (expired or not)."""

    def __init__(self, table, scope: str) -> None:
        self.table, self.scope = table, scope

    def __contains__(self, key: int) -> bool:
        return self.table.peek(self.scope, key, 0.0, live_only=False) is not None


def capacity_lru(clients: int, capacity: int, sample: int = 1000) -> LruRun:
    with tempfile.TemporaryDirectory(prefix="buddylb-lru-") as tmp:
        b, vip = build_balancer(Path(tmp) / "lru.cfg", capacity)
    start = time.perf_counter()
    decide_clients(b, vip, range(clients), record=False)
    seconds = time.perf_counter() - start
    table = b.tables["Admin"]
    (st,) = table.scopes.values()
    name = st.scope.name
    entries = _Present(table, name)
    first_kept = clients - capacity
    boundary = client_key(first_kept) in entries and client_key(first_kept - 1) not in entries
    step_new, step_old = max(1, capacity // sample), max(1, first_kept // sample)
    recent = [first_kept + i * step_new for i in range(sample)]
    old = [i * step_old for i in range(sample)]
    present = sum(1 for n in recent if client_key(n) in entries)
    absent = sum(1 for n in old if client_key(n) not in entries)
    size, evictions = table.size, table.counters.evictions
    # LRU, not FIFO: refresh the 10 oldest, add 10 new: the next 10 oldest must go instead
    k = 10
    decide_clients(b, vip, range(first_kept, first_kept + k), record=False)
    decide_clients(b, vip, range(clients, clients + k), record=False)
    touched = (all(client_key(n) in entries for n in range(first_kept, first_kept + k))
               and not any(client_key(n) in entries for n in range(first_kept + k, first_kept + 2 * k))
               and client_key(first_kept + 2 * k) in entries
               and table.size == capacity and table.counters.evictions == evictions + k)
    return LruRun(clients, capacity, size, evictions, boundary, present, absent, sample, touched,
                  round(seconds, 2))


@dataclass
class RssRun:
    entries: int
    cycles: int
    rss_before: int
    rss_full: int
    rss_after_cycles: int
    rss_samples: list  # VmRSS after each twelfth of the cycles
    size: int
    evictions: int
    seconds: float

    @property
    def bytes_per_entry(self) -> float:
        return (self.rss_full - self.rss_before) / self.entries

    @property
    def ratio(self) -> float:
        return self.rss_after_cycles / self.rss_full

    @property
    def peak_ratio(self) -> float:
        return max(self.rss_samples) / self.rss_full

    @property
    def bounded(self) -> bool:
        third = len(self.rss_samples) * 2 // 3
        return max(self.rss_samples[third:]) <= max(self.rss_samples[:third])

    @property
    def ok(self) -> bool:
        return (self.ratio <= 1.25 and self.bounded and self.size == self.entries
                and self.evictions == self.cycles)

    def as_dict(self) -> dict:
        return asdict(self) | {"bytes_per_entry": round(self.bytes_per_entry, 1), "ratio": round(self.ratio, 3),
                               "peak_ratio": round(self.peak_ratio, 3), "bounded": self.bounded, "ok": self.ok}


def rss_cycles(entries: int, cycles: int) -> RssRun:
    with tempfile.TemporaryDirectory(prefix="buddylb-rss-") as tmp:
        b, vip = build_balancer(Path(tmp) / "rss.cfg", entries)
    gc.collect()
    before = vm_rss()
    start = time.perf_counter()
    decide_clients(b, vip, range(entries), record=False)
    gc.collect()
    full = vm_rss()
    samples = []
    edges = [entries + cycles * i // 12 for i in range(13)]
    for lo, hi in zip(edges, edges[1:]):
        decide_clients(b, vip, range(lo, hi), record=False)  # each one evicts one
        gc.collect()
        samples.append(vm_rss())
    table = b.tables["Admin"]
    return RssRun(entries, cycles, before, full, samples[-1], samples, table.size, table.counters.evictions,
                  round(time.perf_counter() - start, 2))


def main(argv: list[str]) -> int:
    kind, a, b = argv[0], int(argv[1]), int(argv[2])
    run = capacity_lru(a, b) if kind == "lru" else rss_cycles(a, b)
    print(json.dumps(run.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
