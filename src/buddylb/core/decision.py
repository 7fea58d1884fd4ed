"""The values decide() takes and returns (`core.decide`): Flow, Decision, Resolution.

Compiled (decision.pxd) each is an extension type with C fields, built field by field
on the decision path (`_decision`, `_res`): one of each per decision, so their cost is
part of issue 11's decision rate.  An IPv4 client key decide() parsed in C is kept in
the Decision as C integers and made a Python int only when `key` is read.  No rule
lives here; `core.decide` re-exports the three classes.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

from buddylb.core.keys import BOTH_V4_TAG, KeyInfo
from buddylb.core.slots import FORM_RAW
from buddylb.core.snapshot import Farm, Member, Scope, Vip
from buddylb.core.sticky import Entry, StickyTable

_NO_KEY = KeyInfo(None)


def fixed_key(lo: int, form: int) -> int:
    """The key int of a fixed-width IPv4 key (`core.slots` forms raw and both4), as ip_key makes it."""
    return lo if form == FORM_RAW else BOTH_V4_TAG | lo


class Flow:
    """What the engine needs to know about one connection or request.  A plain class (compiled:
    an extension type with C fields, decide.pxd): one is made per connection or request."""

    __slots__ = ("source", "destination", "url", "headers", "cookies", "xff", "ssl_session", "wall")

    def __init__(self, source: str, destination: str, url: str | None = None,
                 headers: Mapping[str, str] | None = None, cookies: Mapping[str, str] | None = None,
                 xff: Sequence[str] | None = None, ssl_session: bytes | None = None, wall: float = 0.0) -> None:
        self.source = source
        self.destination = destination
        self.url = url  # L7 only: the request target including the query
        self.headers = headers  # lower-case names
        self.cookies = cookies
        self.xff = xff  # X-Forwarded-For values as received
        self.ssl_session = ssl_session  # ClientHello session id on TLS passthrough
        self.wall = wall  # wall-clock seconds, for cookie tokens

    def __repr__(self) -> str:
        return f"Flow(source={self.source!r}, destination={self.destination!r}, url={self.url!r})"


class Decision:
    """What decide() chose.  A plain class (compiled: an extension type, decision.pxd): one
    is made per decision, and a 15-field dataclass cost as much as the table lookup."""

    __slots__ = ("outcome", "vip", "class_name", "farm", "member", "scope", "_key", "klo", "kform", "entry",
                 "table", "set_cookie", "learn_cookie", "learn_session", "queue", "tried", "rule")

    def __init__(self, outcome: str, vip: Vip, class_name: str | None = None, farm: Farm | None = None,
                 member: Member | None = None, scope: Scope | None = None, key: Hashable = None,
                 entry: Entry | None = None, table: StickyTable | None = None, set_cookie: str | None = None,
                 learn_cookie: str | None = None, learn_session: bool = False, queue: bool = False,
                 tried: tuple[str, ...] = (), rule: str = "") -> None:
        self.outcome = outcome
        self.vip = vip
        self.class_name = class_name
        self.farm = farm
        self.member = member
        self.scope = scope
        self._key = key
        self.klo = 0
        self.kform = -1  # a fixed-width form (core.slots): the key is `klo`, see `key`
        self.entry = entry
        self.table = table
        self.set_cookie = set_cookie  # value of buddylb's cookie to send back (cookie insert)
        self.learn_cookie = learn_cookie  # learned cookie name to watch for in the response
        self.learn_session = learn_session  # ssl-session: learn the id from the ServerHello
        self.queue = queue  # rule 6: every server is only at its connection limit
        self.tried = tried
        self.rule = rule

    @property
    def key(self) -> Hashable:
        """The client's sticky key (None: none); kept as C integers when decide() parsed it so."""
        return self._key if self.kform < 0 else fixed_key(self.klo, self.kform)

    @property
    def address(self) -> str:
        return self.member.address if self.member else ""

    @property
    def port(self) -> int:
        return self.member.target_port(self.vip.port) if self.member else 0

    def __repr__(self) -> str:
        who = f"{self.farm.name}/{self.member.rserver}" if self.farm is not None and self.member is not None else None
        return f"Decision({self.outcome!r}, {who}, key={self.key!r}, rule={self.rule!r})"


class Resolution:
    """Which SPEC §3 rule applies: a fixed rserver, or candidates for the predictor.

    A plain class (compiled: an extension type): one is made per decision."""

    __slots__ = ("outcome", "member", "candidates", "rule")

    def __init__(self, outcome: str, member: Member | None, candidates: tuple[Member, ...], rule: str) -> None:
        self.outcome = outcome
        self.member = member
        self.candidates = candidates
        self.rule = rule

    def __repr__(self) -> str:
        return f"Resolution({self.outcome!r}, {self.member!r}, {self.candidates!r}, {self.rule!r})"


def _res(outcome: str, member: Member | None, candidates: tuple, rule: str) -> Resolution:
    """resolve()'s Resolution, fields written one by one (compiled: no argument parsing)."""
    r = Resolution.__new__(Resolution)
    r.outcome = outcome
    r.member = member
    r.candidates = candidates
    r.rule = rule
    return r


def _decision(outcome: str, vip: Vip, class_name: str, farm: Farm, member: Member, scope: Scope | None,
              key: Hashable, lo: int, form: int, table: StickyTable | None, info: KeyInfo, rule: str) -> Decision:
    """decide()'s Decision, its fields written one by one: compiled, this skips the
    argument parsing of a 15-parameter constructor call (issue 11's decision rate).
    `form` >= 0: the key is the fixed-width `lo` (`key` is then None)."""
    d = Decision.__new__(Decision)
    d.outcome = outcome
    d.vip = vip
    d.class_name = class_name
    d.farm = farm
    d.member = member
    d.scope = scope
    d._key = key
    d.klo = lo  # form >= 0: the key as decide() parsed it (see Decision.key)
    d.kform = form
    d.entry = None
    d.table = table
    if info is _NO_KEY:
        d.set_cookie = d.learn_cookie = None
        d.learn_session = False
    else:
        d.set_cookie = info.set_cookie
        d.learn_cookie = info.learn_cookie
        d.learn_session = info.learn_session
    d.queue = False
    d.tried = ()
    d.rule = rule
    return d
