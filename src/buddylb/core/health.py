"""Probe verdicts as a state machine (SPEC §2.1 probe): sans-IO, clock passed in.

An rserver counts as available from start-up until `faildetect` consecutive failures,
then unavailable until `passdetect count` consecutive successes.  While it is failed
the prober uses `passdetect interval` instead of `interval`.  The I/O side
(`io.probes`) only performs one check and reports success, failure, or a check that
could not run for a local reason (`record_local`: descriptors, buffers, memory, no ICMP
socket) here; the last never counts against the server (SPEC §2.1).

With several probes on one rserver in one farm (the farm's and those under `rserver
host`), the rserver is failed while ANY of them is failed, as on the ACE: `member_up`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(slots=True)
class ProbeTarget:
    context: str
    probe: str
    farm: str
    rserver: str
    address: str
    port: int
    faildetect: int
    passdetect_count: int
    interval_s: float
    passdetect_interval_s: float
    up: bool = True
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_result: str = "pending"
    last_detail: str = ""
    checks: int = 0
    send_proxy: int = 0  # the farm says send-proxy and the probe has no `port`: open with a header (io.probe_checks)

    @property
    def member_key(self) -> tuple[str, str, str]:
        return (self.context, self.farm, self.rserver)

    def next_interval(self) -> float:
        return self.interval_s if self.up else self.passdetect_interval_s

    def record_local(self, detail: str) -> None:
        """A check that could not run here (EMFILE, ENOBUFS ...): no verdict, no count."""
        self.checks += 1
        self.last_result = "not run"
        self.last_detail = detail

    def record(self, ok: bool, detail: str = "") -> bool | None:
        """Feed one check result; returns the new `up` value when it changed, else None."""
        self.checks += 1
        self.last_result = "success" if ok else "failure"
        self.last_detail = detail
        if ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            if not self.up and self.consecutive_successes >= self.passdetect_count:
                self.up = True
                return True
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            if self.up and self.consecutive_failures >= self.faildetect:
                self.up = False
                return False
        return None


def member_up(targets: Iterable[ProbeTarget]) -> bool:
    """The verdict of one membership from all its probes: up only while every one is."""
    return all(t.up for t in targets)
