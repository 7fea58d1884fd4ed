"""The flow record: one typed value per finished L4 connection or L7 request.

It feeds both the access log (io.accesslog formats it) and the metrics (metrics.py
counts its fields): neither parses the other's output apart.  Filling it is cheap on
purpose (slots, bytes kept raw until a line is formatted): one is made per request.
It must never hold a reference that outlives the flow (no decision, no transport).
"""
from __future__ import annotations

from typing import Any

L4_MODES = ("l4", "tls", "udp")  # `mode` of a finished connection (udp: a flow); else an L7 request


class FlowRecord:
    __slots__ = ("ts", "client", "mode", "vip", "class_name", "farm", "rserver", "port", "outcome",
                 "status", "method", "path", "bytes_in", "bytes_out", "duration_s", "error")

    def __init__(self, client: str, mode: str, ts: float) -> None:
        self.ts = ts
        self.client = client
        self.mode = mode  # l4 | tls | udp | http | https
        self.vip = ""
        self.class_name: str | None = None
        self.farm: str | None = None
        self.rserver: str | None = None
        self.port = 0
        self.outcome: str | None = None
        self.status: Any = None  # HTTP status (L7) or a word (L4: closed, no_server, ...)
        self.method = b""
        self.path = b""
        self.bytes_in = 0
        self.bytes_out = 0
        self.duration_s = 0.0
        self.error: str | None = None

    @property
    def l4(self) -> bool:
        return self.mode in L4_MODES

    def decision(self, d: Any) -> None:
        """Copy what the log says of a core.decide.Decision (names, not objects)."""
        self.outcome = d.outcome
        self.class_name = d.class_name
        farm = d.farm
        self.farm = farm.name if farm is not None else None
        member = d.member
        if member is not None:
            self.rserver = member.rserver
            port = member.port  # Member.target_port, inlined: a Python call per request otherwise
            self.port = port if port is not None else d.vip.port

    def end(self, wall: float) -> None:
        """The duration to 0.1 ms, as round(d, 4) would give it, but in floating point
        (round() with digits goes through a decimal string: ~0.5 us per record)."""
        tenths_ms = (wall - self.ts) * 10000.0 + 0.5
        self.duration_s = (tenths_ms // 1.0) / 10000.0

    @property
    def request(self) -> str | None:
        if not self.method:
            return None
        return self.method.decode("latin-1") + " " + self.path[:200].decode("latin-1")

    def as_dict(self) -> dict[str, Any]:
        """The JSON access-log line (field names as documented in the README)."""
        out: dict[str, Any] = {
            "ts": self.ts, "client": self.client, "vip": self.vip, "class": self.class_name,
            "farm": self.farm, "rserver": f"{self.rserver}:{self.port}" if self.rserver else None,
            "outcome": self.outcome, "status": self.status, "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out, "duration_s": self.duration_s, "mode": self.mode,
        }
        if self.method:
            out["request"] = self.request
        if self.error:
            out["error"] = self.error
        return out
