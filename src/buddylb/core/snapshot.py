"""The compiled, immutable runtime tables the data path reads (Envoy's host sets).

A Snapshot is built once per (re)load by `core.compile` and swapped into place by one
assignment; a flow keeps the snapshot it started with.  Nothing here changes after
construction: runtime facts (connection counts, probe results, round-robin cursors)
live in `core.state.RuntimeState`, keyed by names so they survive a reload.

Everything the hot path needs is precomputed into dictionaries and tuples here, so a
sticky hit costs a handful of dictionary lookups (issue: decision path for a hit in a
few dictionary operations).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from buddylb.config.model import Config

OUTCOMES = ("no_sticky", "new", "sticky_hit", "buddy_hit", "restick", "no_server")


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """One rserver's membership in one serverfarm, with everything resolved."""

    context: str
    farm: str
    rserver: str
    index: int
    address: str
    port: int | None  # translated port (PAT); None: the VIP's port
    weight: int
    conn_max: int | None
    conn_min: int | None
    limit_on_host: bool  # the limit came from `rserver host` and counts across farms
    backup: bool
    inservice: bool  # both the host and the farm entry say inservice
    buddy_group: str | None
    key: tuple[str, str, str]  # (context, farm, rserver): the RuntimeState key
    host_key: tuple[str, str]  # (context, rserver)
    line: int = 0
    # RuntimeState's mutable cell for this membership, cached on first use (core.state)
    cell: Any = field(default=None, compare=False, hash=False, repr=False)

    def target_port(self, vip_port: int) -> int:
        return self.port if self.port is not None else vip_port


@dataclass(frozen=True, slots=True)
class PredictorSpec:
    kind: Literal["roundrobin", "leastconns", "hash"] = "roundrobin"
    hash_address: Literal["source", "destination"] = "source"
    hash_prefix4: int = 32
    slowstart_s: float = 0.0  # leastconns: a recovered rserver ramps up over this long (ACE)


@dataclass(frozen=True, slots=True)
class Farm:
    context: str
    name: str
    predictor: PredictorSpec
    probes: tuple[str, ...]
    fail_action_purge: bool
    members: tuple[Member, ...]
    by_rserver: Mapping[str, Member]
    primaries: tuple[Member, ...]
    backups: tuple[Member, ...]
    key: tuple[str, str] = ("", "")  # (context, farm)
    inband: Any = None  # core.inband.InbandSpec (`inband-health check`), None: off
    send_proxy: int = 0  # `send-proxy v1|v2`: PROXY protocol version opening server connections; 0: none


@dataclass(frozen=True, slots=True)
class Scope:
    """The persistence scope of a sticky group: its buddy sticky group, or itself.

    Holds the *effective* key rule (SPEC §1): most granular mask / prefix of the members,
    shortest timeout, activeconns if any member says so.
    """

    context: str
    name: str
    is_buddy: bool
    kind: Literal["ip-netmask", "http-cookie", "http-header", "ssl-session"]
    address: Literal["source", "destination", "both"]
    prefix4: int
    prefix6: int
    cookie_name: str | None
    cookie_insert: bool
    browser_expire: bool
    header_name: str | None
    timeout_s: float
    activeconns: bool
    sticky_groups: tuple[str, ...]
    farms: tuple[str, ...]  # every farm (and backup farm) of the members, in order
    farm_index: Mapping[str, int]

    @property
    def netmask(self) -> str:
        bits = (0xFFFFFFFF << (32 - self.prefix4)) & 0xFFFFFFFF
        return ".".join(str((bits >> s) & 0xFF) for s in (24, 16, 8, 0))


@dataclass(frozen=True, slots=True)
class StickyGroup:
    name: str
    scope: Scope
    farm: str
    backup_farm: str | None
    timeout_s: float
    line: int = 0
    # `static cookie-value V rserver R [PORT]`: V -> (R, PORT or None); core.statics
    statics: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HttpMatch:
    kind: Literal["url", "header", "cookie"]
    name: str | None  # lower-case header name; cookie name as written
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class PolicyClass:
    """One `class` of a load-balance policy; `matches` empty means class-default."""

    name: str
    match_all: bool
    matches: tuple[HttpMatch, ...]
    farm: str | None
    backup_farm: str | None
    sticky: str | None
    is_default: bool = False
    # resolved at compile time so a decision does no name lookups
    sticky_group: "StickyGroup | None" = field(default=None, compare=False, repr=False)
    farms: tuple = field(default=(), compare=False, repr=False)  # (primary, backup) Farm objects
    # core.decide.Plan: what a decision in this class reads, cached on first use per sticky table
    plan: Any = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    http: bool
    classes: tuple[PolicyClass, ...]
    # class name -> `insert-http` fields (core.inserts templates); only classes that have some
    inserts: Mapping[str, tuple] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TlsService:
    name: str
    cert: str
    key: str
    chain: str | None
    line: int = 0
    ciphers: tuple[str, ...] = ()  # OpenSSL names, from `ssl advanced-options` (ACE parameter-map)
    min_version: str | None = None  # ssl.TLSVersion member name; never below TLSv1_2


@dataclass(frozen=True, slots=True)
class Vip:
    """One listening address:port with the multi-match class that claimed it."""

    context: str
    class_name: str
    address: str
    port: int
    policy: Policy
    tls: TlsService | None
    inservice: bool
    line: int = 0
    acl: Any = None  # core.acl.VipFilter: the access-groups that apply (SPEC §2.4); None: open
    mm_policy: str = ""  # the multi-match policy that activated it
    protocol: str = "tcp"  # "udp": a datagram VIP (io.udp), in Snapshot.udp_vips
    conn_limit: tuple[int, int] | None = None  # (max, resume below min): open client connections
    accept_proxy: tuple = ()  # ipaddress networks whose peers must open with a PROXY header (io.proxygate)

    @property
    def name(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Context:
    name: str
    rservers: Mapping[str, tuple[str, int, bool]]  # name -> (address, weight, inservice)
    farms: Mapping[str, Farm]
    stickies: Mapping[str, StickyGroup]
    scopes: Mapping[str, Scope]
    buddy_real_groups: Mapping[str, Mapping[str, tuple[str, ...]]]  # G -> farm -> rservers
    buddy_members: Mapping[tuple[str, str], tuple[Member, ...]]  # (G, farm) -> members
    buddy_of: Mapping[tuple[str, str], str]  # (farm, rserver) -> G
    policies: Mapping[str, Policy]
    probes: Mapping[str, object]  # name -> config.model.Probe (read-only by convention)
    max_entries: int

    def has_sticky_group(self, name: str) -> bool:
        """A buddy sticky group (scope) or a sticky group of that name exists here."""
        return any(name == s.name or name in s.sticky_groups for s in self.scopes.values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    generation: int
    contexts: Mapping[str, Context]
    vips: Mapping[tuple[str, int], Vip]
    timeouts: Mapping[str, float]
    trusted_proxies: tuple  # ipaddress networks
    config: Config = field(compare=False, repr=False)
    acls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # context -> name -> core.acl.Acl
    udp_vips: Mapping[tuple[str, int], Vip] = field(default_factory=dict)  # `udp eq P` VIPs
