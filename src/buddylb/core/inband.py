"""`inband-health check count|log N [reset MS]|remove N [reset MS] [resume-service S]`
(ACE, SPEC §2.4): passive health from real traffic, sans-IO, clock passed in.

Every failed connect to an rserver (refused, or no answer within `timeout connect`)
is counted per membership (`count`).  With `log` or `remove`, N failures within the
reset interval (default 100 ms, ACE's) make a verdict: `log` asks for one log line,
`remove` also takes the rserver out of the farm (the caller marks it failed) until
`resume-service` seconds have passed (0, ACE's default: until the next reload).
The I/O side (`io.flow`) reports failures; `io.runtime` carries verdicts out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from buddylb.config.model import InbandSpec


@dataclass(slots=True)
class _Window:
    total: int = 0
    recent: list[float] = field(default_factory=list)


class InbandTracker:
    """Failure counts per (context, farm, rserver) and the verdicts they reach."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str, str], _Window] = {}

    def failed(self, key: tuple[str, str, str], spec: InbandSpec, now: float) -> str | None:
        """Count one failure; returns "log" or "remove" when the threshold is reached."""
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window()
        w.total += 1
        if spec.mode == "count" or spec.threshold <= 0:
            return None
        w.recent = [t for t in w.recent if now - t <= spec.reset_s]
        w.recent.append(now)
        if len(w.recent) >= spec.threshold:
            w.recent.clear()
            return spec.mode
        return None

    def total(self, key: tuple[str, str, str]) -> int:
        w = self.windows.get(key)
        return w.total if w is not None else 0
