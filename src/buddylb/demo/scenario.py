"""The demo's traffic driver: which client asks which VIP, and what the balancer did.

Owns the walks (a cart walk: HTTP cart then HTTPS checkout; a tiers walk: web, app, web)
and their reading back: every request's serverfarm, rserver and outcome come from the
balancer's own access log (`outcome=` per request, SPEC §3 outcome names), checked
against the name the backend answered with.  It also owns the verdicts on the results.
It never prints (that is `report`'s job) and never starts or stops processes.
"""
from __future__ import annotations

import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from buddylb.demo.config import BUDDY_REAL_GROUP, VIP, DemoPorts
from buddylb.demo.net import fetch
from buddylb.errors import CommandError

LOG_WAIT_S = 10.0  # the access log is flushed every 200 ms
# format_text in buddylb.io.accesslog: "TS CLIENT vip=.. class=.. farm=F rserver=R:PORT outcome=O status=S ..."
_LINE = re.compile(r"^\S+ (?P<client>\S+) vip=\S+ class=\S+ farm=(?P<farm>\S+) rserver=(?P<rserver>\S+) "
                   r"outcome=(?P<outcome>\S+) status=(?P<status>\S+)")


@dataclass(frozen=True, slots=True)
class Step:
    farm: str
    port: int
    tls: bool = False


@dataclass(frozen=True, slots=True)
class Visit:
    farm: str
    rserver: str  # the rserver name, as the access log gives it (port dropped)
    outcome: str


@dataclass(frozen=True, slots=True)
class Walk:
    client: str
    kind: str  # "cart" or "tiers"
    visits: tuple[Visit, ...]


def cart_steps(p: DemoPorts) -> tuple[Step, ...]:
    return (Step("http", p.cart), Step("decrypted", p.checkout, tls=True))


def tiers_steps(p: DemoPorts) -> tuple[Step, ...]:
    return (Step("web", p.web), Step("app", p.app), Step("web", p.web))


class AccessLogReader:
    """Reads the lines appended to the access log since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pending = ""

    def wait_for(self, count: int) -> list[dict[str, str]]:
        records: list[dict[str, str]] = []
        deadline = time.monotonic() + LOG_WAIT_S
        while len(records) < count:
            records += self._read_new()
            if len(records) >= count:
                break
            if time.monotonic() > deadline:
                raise CommandError(f"the access log {self.path} shows {len(records)} of the {count} requests sent", 1)
            time.sleep(0.05)
        return records

    def _read_new(self) -> list[dict[str, str]]:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        lines = (self.pending + chunk).split("\n")
        self.pending = lines.pop()  # an incomplete last line waits for the next read
        return [m.groupdict() for m in map(_LINE.match, lines) if m]


def drive(log: AccessLogReader, kind: str, clients: list[str], steps: tuple[Step, ...]) -> list[Walk]:
    """Each client walks the steps in order, one fresh connection per step."""
    answered: dict[str, list[str]] = {}
    for client in clients:
        answered[client] = []
        for step in steps:
            status, body = fetch(client, VIP, step.port, tls=step.tls)
            if status != 200:
                scheme = "https" if step.tls else "http"
                raise CommandError(f"{client} -> {scheme}://{VIP}:{step.port}/ answered {status} ({body[:80]!r})", 1)
            answered[client].append(body)
    seen: dict[tuple[str, str], deque[dict[str, str]]] = defaultdict(deque)
    for r in log.wait_for(len(clients) * len(steps)):
        seen[(r["client"], r["farm"])].append(r)
    walks = []
    for client in clients:
        visits = []
        for step, body in zip(steps, answered[client]):
            if not seen[(client, step.farm)]:
                raise CommandError(f"the access log has no line for {client} in serverfarm {step.farm}", 1)
            r = seen[(client, step.farm)].popleft()
            rserver = r["rserver"].rsplit(":", 1)[0]
            if rserver != body:
                raise CommandError(f"{client} in serverfarm {step.farm}: the access log says {rserver}, "
                                   f"but {body or 'nothing'} answered", 1)
            visits.append(Visit(step.farm, rserver, r["outcome"]))
        walks.append(Walk(client, kind, tuple(visits)))
    return walks


# -- verdicts ----------------------------------------------------------------------------
def one_server(walk: Walk) -> bool:
    """A cart walk is right when every farm it crossed used the same physical server."""
    return len({v.rserver for v in walk.visits}) == 1


def tiers_consistent(walk: Walk) -> bool:
    """A tiers walk is right when app is web's buddy and the second web visit is the first's."""
    web1, app, web2 = walk.visits
    same_group = BUDDY_REAL_GROUP[("web", web1.rserver)] == BUDDY_REAL_GROUP[("app", app.rserver)]
    return same_group and web2.rserver == web1.rserver


def walk_ok(walk: Walk) -> bool:
    return one_server(walk) if walk.kind == "cart" else tiers_consistent(walk)


def affected_by(walks: list[Walk], rserver: str) -> list[Walk]:
    """The walks whose first visit landed on `rserver`: the clients an outage would move."""
    return [w for w in walks if w.visits[0].rserver == rserver]
