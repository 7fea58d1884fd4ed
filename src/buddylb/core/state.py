"""RuntimeState: the facts about rservers that change while buddylb runs.

Connection counts, probe verdicts, operator overrides and predictor cursors. The data
path and the prober write them; the engine reads them through `available()`.

Facts are kept in small mutable *cells*, one per (context, farm, rserver) membership and
one per (context, rserver) host, registered by name so they survive a reload untouched
(a reload changes the configuration, not what we know about the servers).  A snapshot's
immutable `Member` caches a reference to its cell on first use (`Member.cell`), so the
hot path reads a connection count or a probe verdict with one attribute access instead
of hashing a name tuple; the cell remembers which RuntimeState owns it, so a member used
with another state (tests, a fresh process) is re-bound.

Availability (SPEC §3): in service in the rserver and in the farm, probe passing (or
no probe), under its connection limit.  The limit has hysteresis (SPEC §2.1
`conn-limit max N min M`): unavailable at N, available again only below M.

Drain (README "Drain"; HAProxy's `set server state drain`): a draining host stays
*available*, so every rule that names it for a client (SPEC §3 rules 3, 4 and 5: the
client's last, remembered or buddy rserver) still sends that client there, but the
predictor never picks it for anyone else (`core.decide.available_members`).  It is a
set of host keys, empty in normal operation, so the hit path never reads it.

Compiled (setup.py COMPILED, state.pxd) the cells and the state are extension types with
C fields, and `core.decide` calls `available` / `opened` as C calls (issue 11: two Python
method calls were ~200 ns of a sticky hit); uncompiled, the same source runs as is.
"""
from __future__ import annotations

from buddylb.core.snapshot import Member


class HostCell:
    __slots__ = ("conns", "admin_out")

    def __init__(self) -> None:
        self.conns = 0
        self.admin_out = False  # taken out of service by the operator


class MemberCell:
    __slots__ = ("owner", "conns", "probe_down", "limited", "host", "ramp")

    def __init__(self, owner: "RuntimeState", host: HostCell) -> None:
        self.owner = owner
        self.conns = 0
        self.probe_down = False
        self.limited = False
        self.host = host
        self.ramp = 1.0  # leastconns slowstart: share of its weight while ramping up (0, 1]


class RuntimeState:
    __slots__ = ("cells", "hosts", "cursors", "swrr", "draining", "__weakref__")

    def __init__(self) -> None:
        self.draining: set[tuple[str, str]] = set()  # (context, rserver) hosts taking no new clients
        self.cells: dict[tuple[str, str, str], MemberCell] = {}
        self.hosts: dict[tuple[str, str], HostCell] = {}
        self.cursors: dict[tuple[str, str], int] = {}
        self.swrr: dict[tuple[str, str], dict[str, int]] = {}

    # -- cells ----------------------------------------------------------------------
    def cell(self, m: Member) -> MemberCell:
        c = m.cell
        if c is not None and c.owner is self:
            return c
        c = self.cells.get(m.key)
        if c is None:
            c = self.cells[m.key] = MemberCell(self, self.host(m.host_key))
        object.__setattr__(m, "cell", c)  # a cache on the frozen member; see module doc
        return c

    def host(self, key: tuple[str, str]) -> HostCell:
        h = self.hosts.get(key)
        if h is None:
            h = self.hosts[key] = HostCell()
        return h

    # -- availability -------------------------------------------------------------
    def available(self, m: Member) -> bool:
        if not m.inservice:
            return False
        c = m.cell
        if c is None or c.owner is not self:
            c = self.cell(m)
        if c.probe_down or c.host.admin_out:
            return False
        if m.conn_max is None:
            return True
        return not self._at_limit(m, c)

    def _at_limit(self, m: Member, c: MemberCell) -> bool:
        count = c.host.conns if m.limit_on_host else c.conns
        if c.limited:
            if count < (m.conn_min if m.conn_min is not None else m.conn_max):  # type: ignore[operator]
                c.limited = False
                return False
            return True
        if count >= m.conn_max:  # type: ignore[operator]
            c.limited = True
            return True
        return False

    def only_limited(self, m: Member) -> bool:
        """True when `m` would be available but for its connection limit (SPEC §3 rule 6 queue)."""
        c = self.cell(m)
        return (m.inservice and not c.probe_down and not c.host.admin_out and m.host_key not in self.draining
                and m.conn_max is not None and self._at_limit(m, c))

    # -- connection accounting -----------------------------------------------------
    def opened(self, m: Member) -> None:
        c = m.cell
        if c is None or c.owner is not self:
            c = self.cell(m)
        c.conns += 1
        c.host.conns += 1

    def closed(self, m: Member) -> None:
        c = m.cell
        if c is None or c.owner is not self:
            c = self.cell(m)
        if c.conns > 0:
            c.conns -= 1
        if c.host.conns > 0:
            c.host.conns -= 1

    def connections(self, m: Member) -> int:
        return self.cell(m).conns

    def host_connections(self, context: str, rserver: str) -> int:
        h = self.hosts.get((context, rserver))
        return h.conns if h else 0

    def conns_of(self, key: tuple[str, str, str]) -> int:
        c = self.cells.get(key)
        return c.conns if c else 0

    # -- probe and operator inputs -------------------------------------------------
    def set_probe(self, key: tuple[str, str, str], up: bool) -> None:
        c = self.cells.get(key)
        if c is None:
            c = self.cells[key] = MemberCell(self, self.host((key[0], key[2])))
        c.probe_down = not up

    def probe_failed(self, key: tuple[str, str, str]) -> bool:
        c = self.cells.get(key)
        return c is not None and c.probe_down

    def probe_down_keys(self) -> list[tuple[str, str, str]]:
        return [k for k, c in self.cells.items() if c.probe_down]

    def set_admin_inservice(self, context: str, rserver: str, inservice: bool) -> None:
        self.host((context, rserver)).admin_out = not inservice
        self.draining.discard((context, rserver))

    def set_admin_drain(self, context: str, rserver: str) -> None:
        """Drain: clients the sticky database ties to the host keep it; no new client gets it."""
        self.host((context, rserver)).admin_out = False
        self.draining.add((context, rserver))

    def admin_state(self, context: str, rserver: str) -> str:
        """The operator's setting for a host: INSERVICE, DRAIN or OUTOFSERVICE."""
        if self.admin_out(context, rserver):
            return "OUTOFSERVICE"
        return "DRAIN" if (context, rserver) in self.draining else "INSERVICE"

    def admin_out(self, context: str, rserver: str) -> bool:
        h = self.hosts.get((context, rserver))
        return h is not None and h.admin_out

    def state_name(self, m: Member) -> str:
        """ACE-like operational state for show commands."""
        c = self.cell(m)
        if not m.inservice or c.host.admin_out:
            return "OUTOFSERVICE"
        if c.probe_down:
            return "PROBE-FAILED"
        if m.host_key in self.draining:
            return "DRAINING"
        if m.conn_max is not None and self._at_limit(m, c):
            return "MAXCONNS"
        return "OPERATIONAL"
