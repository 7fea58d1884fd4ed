"""Probe verdicts as a state machine (SPEC §2.1 probe): sans-IO, clock passed in.

An rserver counts as available from start-up until `faildetect` consecutive failures,
then unavailable until `passdetect count` consecutive successes.  While it is failed
the prober uses `passdetect interval` instead of `interval`.  The I/O side
(`io.probes`) only performs one check and reports success or failure here.
"""
from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def member_key(self) -> tuple[str, str, str]:
        return (self.context, self.farm, self.rserver)

    def next_interval(self) -> float:
        return self.interval_s if self.up else self.passdetect_interval_s

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
