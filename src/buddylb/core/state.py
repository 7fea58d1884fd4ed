"""RuntimeState: the facts about rservers that change while buddylb runs.

Connection counts, probe verdicts, operator overrides and predictor cursors. The data
path and the prober write them; the engine reads them through `available()`.  Keys are
names (context, farm, rserver), never snapshot objects, so the state survives a reload
untouched: a reload changes the configuration, not what we know about the servers.

Availability (SPEC §3): in service in the rserver and in the farm, probe passing (or
no probe), under its connection limit.  The limit has hysteresis (SPEC §2.1
`conn-limit max N min M`): unavailable at N, available again only below M.
"""
from __future__ import annotations

from buddylb.core.snapshot import Member


class RuntimeState:
    __slots__ = ("conns", "host_conns", "probe_down", "admin_out", "limited", "cursors", "swrr")

    def __init__(self) -> None:
        self.conns: dict[tuple[str, str, str], int] = {}
        self.host_conns: dict[tuple[str, str], int] = {}
        self.probe_down: set[tuple[str, str, str]] = set()
        self.admin_out: set[tuple[str, str]] = set()  # (context, rserver) taken out by the operator
        self.limited: set[tuple[str, str, str]] = set()
        self.cursors: dict[tuple[str, str], int] = {}
        self.swrr: dict[tuple[str, str], dict[str, int]] = {}

    # -- availability -------------------------------------------------------------
    def available(self, m: Member) -> bool:
        if not m.inservice:
            return False
        key = m.key
        if key in self.probe_down or m.host_key in self.admin_out:
            return False
        if m.conn_max is None:
            return True
        return not self._at_limit(m)

    def _at_limit(self, m: Member) -> bool:
        count = self.host_conns.get(m.host_key, 0) if m.limit_on_host else self.conns.get(m.key, 0)
        if m.key in self.limited:
            if count < (m.conn_min if m.conn_min is not None else m.conn_max):  # type: ignore[operator]
                self.limited.discard(m.key)
                return False
            return True
        if count >= m.conn_max:  # type: ignore[operator]
            self.limited.add(m.key)
            return True
        return False

    def only_limited(self, m: Member) -> bool:
        """True when `m` would be available but for its connection limit (SPEC §3 rule 6 queue)."""
        return (
            m.inservice
            and m.key not in self.probe_down
            and m.host_key not in self.admin_out
            and m.conn_max is not None
            and self._at_limit(m)
        )

    # -- connection accounting -----------------------------------------------------
    def opened(self, m: Member) -> None:
        self.conns[m.key] = self.conns.get(m.key, 0) + 1
        self.host_conns[m.host_key] = self.host_conns.get(m.host_key, 0) + 1

    def closed(self, m: Member) -> None:
        n = self.conns.get(m.key, 0) - 1
        self.conns[m.key] = n if n > 0 else 0
        h = self.host_conns.get(m.host_key, 0) - 1
        self.host_conns[m.host_key] = h if h > 0 else 0

    def connections(self, m: Member) -> int:
        return self.conns.get(m.key, 0)

    # -- probe and operator inputs -------------------------------------------------
    def set_probe(self, key: tuple[str, str, str], up: bool) -> None:
        if up:
            self.probe_down.discard(key)
        else:
            self.probe_down.add(key)

    def set_admin_inservice(self, context: str, rserver: str, inservice: bool) -> None:
        if inservice:
            self.admin_out.discard((context, rserver))
        else:
            self.admin_out.add((context, rserver))

    def state_name(self, m: Member) -> str:
        """ACE-like operational state for show commands."""
        if not m.inservice or m.host_key in self.admin_out:
            return "OUTOFSERVICE"
        if m.key in self.probe_down:
            return "PROBE-FAILED"
        if m.conn_max is not None and self._at_limit(m):
            return "MAXCONNS"
        return "OPERATIONAL"
