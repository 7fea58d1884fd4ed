"""The parsed configuration: what the operator wrote, with where they wrote it.

This module owns the *model* of an ACE-style configuration file (SPEC §2) as plain
mutable dataclasses filled by the parser (`config.parser`) and checked by
`config.validate`.  Every object and every reference carries the line it came from so
that a later error can name file and line.  It must never hold runtime state and never
compute routing: `core.compile` turns a validated model into the immutable Snapshot.

Defaults that SPEC §2 fixes are written here once, as field defaults, so the parser
only records what the file says and the compiler never re-derives a default.

It is over 400 lines because it holds one small dataclass per ACE object (SPEC §2.1,
§2.4: access-lists, interfaces, parameter-maps joined the wave-1 objects) and they read
best together: every section fills these and nothing else; splitting them would only
scatter the one place that says what a configuration can hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DEFAULT_CONTEXT = "Admin"
DEFAULT_WEIGHT = 8
DEFAULT_STICKY_TIMEOUT_S = 1440 * 60.0  # ACE's 1440 minutes
DEFAULT_MAX_ENTRIES = 1_048_576

# SPEC §5 timeouts, seconds; `timeout NAME T` global lines override them.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "http-request": 10.0,
    "keep-alive": 5.0,
    "client": 30.0,
    "server": 30.0,
    "connect": 3.0,
    "tls-handshake": 5.0,
    "queue": 5.0,
    "tunnel": 3600.0,  # an upgraded connection (WebSocket): no byte either way for this long
    "drain": 30.0,
}


@dataclass
class Ref:
    """A reference by name to another object, kept with its line for error messages."""

    name: str
    line: int


@dataclass
class Rserver:
    """`rserver host NAME` (SPEC §2.1)."""

    name: str
    line: int
    address: str | None = None
    address_line: int = 0
    weight: int | None = None
    conn_max: int | None = None
    conn_min: int | None = None
    inservice: bool = False  # ACE: out of service until `inservice`
    probes: list[Ref] = field(default_factory=list)  # `probe P` under the host: in every farm


@dataclass
class FarmMember:
    """`rserver NAME [PORT]` inside a serverfarm: a membership, with its own port (PAT)."""

    name: str
    line: int
    port: int | None = None  # None: the VIP's port
    weight: int | None = None  # None: the host's weight
    conn_max: int | None = None  # None: the host's limit
    conn_min: int | None = None
    buddy_group: str | None = None
    buddy_group_line: int = 0
    backup: bool = False
    inservice: bool = False


PredictorKind = Literal["roundrobin", "leastconns", "hash"]


@dataclass
class Predictor:
    kind: PredictorKind = "roundrobin"
    hash_address: Literal["source", "destination"] = "source"
    hash_mask: str | None = None  # dotted netmask for `hash address source MASK`
    line: int = 0
    slowstart_s: float = 0.0  # `predictor leastconns slowstart T` (seconds)


@dataclass(frozen=True, slots=True)
class InbandSpec:
    """`inband-health check count|log N [reset MS]|remove N [reset MS] [resume-service S]`."""

    mode: str  # count | log | remove
    threshold: int = 0
    reset_s: float = 0.1  # ACE's default reset: 100 ms
    resume_s: float = 0.0  # 0: failed until the next reload


@dataclass
class Serverfarm:
    """`serverfarm host NAME`."""

    name: str
    line: int
    predictor: Predictor = field(default_factory=Predictor)
    probes: list[Ref] = field(default_factory=list)
    fail_action_purge: bool = False
    members: list[FarmMember] = field(default_factory=list)
    inband: InbandSpec | None = None  # `inband-health check` (core.inband)
    send_proxy: int = 0  # `send-proxy v1|v2`: the PROXY protocol version servers get; 0: none


@dataclass
class ProbeHeader:
    name: str
    value: str


ProbeKind = Literal["tcp", "http", "https", "icmp"]


@dataclass
class Probe:
    """`probe tcp|http|https|icmp NAME` with SPEC §2.1 defaults (ACE's)."""

    name: str
    line: int
    kind: ProbeKind
    port: int | None = None  # None: the member's port in the farm
    interval_s: float = 15.0
    faildetect: int = 3
    passdetect_interval_s: float = 60.0
    passdetect_count: int = 3
    open_timeout_s: float = 1.0
    receive_timeout_s: float = 10.0  # `receive T`: the wait for the answer (ACE default 10 s)
    method: Literal["GET", "HEAD"] = "GET"
    url: str = "/"
    host: str | None = None  # from an absolute URL in `request method get url http://HOST/PATH`
    expect: list[tuple[int, int]] = field(default_factory=list)  # `expect status LO HI` lines; none: 200-299
    expect_regex: str | None = None  # `expect regex R [offset N]`: searched in the answer
    expect_offset: int = 0
    forced_close: bool = False  # `connection term forced`: reset instead of a FIN
    headers: list[ProbeHeader] = field(default_factory=list)
    ssl_min_version: str | None = None  # `ssl version`: "TLSv1", "TLSv1_1", "TLSv1_2" (None: all)
    ssl_ciphers: list[str] = field(default_factory=list)  # OpenSSL names of `ssl cipher` lines

    @property
    def expect_ranges(self) -> list[tuple[int, int]]:
        return self.expect or [(200, 299)]

    @property
    def expect_lo(self) -> int:
        return self.expect_ranges[0][0]

    @property
    def expect_hi(self) -> int:
        return self.expect_ranges[0][1]


@dataclass
class StaticCookie:
    """`static cookie-value V rserver R [PORT]` in a sticky http-cookie group (ACE)."""

    value: str
    rserver: str
    port: int | None
    line: int


StickyKind = Literal["ip-netmask", "http-cookie", "http-header", "ssl-session"]
AddressRule = Literal["source", "destination", "both"]


@dataclass
class StickyGroup:
    """`sticky ip-netmask|http-cookie|http-header|ssl-session ... NAME`."""

    name: str
    line: int
    kind: StickyKind
    netmask: str | None = None  # ip-netmask: the dotted IPv4 mask as written
    address: AddressRule = "source"  # ip-netmask: which address(es) form the key
    v6_prefix: int | None = None  # `v6-prefix LEN`; None means 128
    cookie_name: str | None = None
    cookie_insert: bool = False
    browser_expire: bool = False
    header_name: str | None = None
    timeout_s: float = DEFAULT_STICKY_TIMEOUT_S
    activeconns: bool = False
    replicate: bool = False
    replicate_line: int = 0
    farm: Ref | None = None
    backup_farm: Ref | None = None
    buddy_group: str | None = None
    buddy_group_line: int = 0
    statics: list[StaticCookie] = field(default_factory=list)  # `static cookie-value` lines


MatchKind = Literal["virtual-address", "source-address", "url", "header", "cookie"]


@dataclass
class Match:
    """One `SEQ match ...` line of a class-map."""

    seq: int
    line: int
    kind: MatchKind
    # virtual-address
    address: str | None = None
    mask: str | None = None
    protocol: str = "tcp"
    port_op: Literal["eq", "range", "any"] = "any"
    port_lo: int = 0
    port_hi: int = 65535
    # http url / header / cookie
    name: str | None = None  # header or cookie name
    regex: str | None = None


@dataclass
class ClassMap:
    """`class-map [type http loadbalance] [match-all|match-any] NAME`."""

    name: str
    line: int
    http: bool = False
    match_all: bool = True
    matches: list[Match] = field(default_factory=list)


@dataclass
class LbClass:
    """`class C` inside a load-balance policy-map."""

    name: str  # class-map name or "class-default"
    line: int
    farm: Ref | None = None
    backup_farm: Ref | None = None
    sticky: Ref | None = None
    insert_http: list[ProbeHeader] = field(default_factory=list)  # `insert-http NAME header-value V`


PolicyType = Literal["default", "generic", "http"]


@dataclass
class LbPolicy:
    """`policy-map type loadbalance [generic|http] first-match NAME`.

    `http` is the type it *became* (SPEC §2.1): `http` says L7, `generic` L4, and no word
    (ACE's default type) L4 until a class uses a feature that needs HTTP; `reason` says
    why, for `check`.  The parser settles both once the whole file is read."""

    name: str
    line: int
    http: bool = False
    classes: list[LbClass] = field(default_factory=list)
    kind: PolicyType = "default"
    reason: str = ""


@dataclass
class MultiMatchClass:
    """`class C` inside a multi-match policy-map."""

    name: str
    line: int
    vip_inservice: bool = False
    lb_policy: Ref | None = None
    ssl_proxy: Ref | None = None
    conn_max: int | None = None  # `conn-limit max N [min M]`: open client connections of each VIP
    conn_min: int | None = None
    accept_proxy: list[Ref] = field(default_factory=list)  # `loadbalance vip accept-proxy CIDR` (name: the CIDR)


@dataclass
class MultiMatchPolicy:
    name: str
    line: int
    classes: list[MultiMatchClass] = field(default_factory=list)


@dataclass
class ParameterMap:
    """`parameter-map type http|connection|ssl NAME`: what of it buddylb honours (SPEC §2.4)."""

    name: str
    line: int
    kind: str  # http | connection | ssl
    ciphers: list[str] = field(default_factory=list)  # ssl: OpenSSL names
    min_version: str | None = None  # ssl: ssl.TLSVersion member name
    used: list[str] = field(default_factory=list)  # lines that describe what buddylb does anyway


@dataclass
class SslProxy:
    """`ssl-proxy service NAME`; paths are resolved against the config file's folder."""

    name: str
    line: int
    cert: str | None = None
    cert_line: int = 0
    key: str | None = None
    key_line: int = 0
    chain: str | None = None
    chain_line: int = 0
    params: Ref | None = None  # `ssl advanced-options NAME`: a parameter-map type ssl


@dataclass
class AclEntry:
    """One `access-list NAME [line N] extended permit|deny PROTO SRC [OP P] DST [OP P]`."""

    line: int
    seq: int  # `line N`, else the order of writing (ACE appends in steps of 8)
    permit: bool
    protocol: int  # IANA number; 0 stands for `ip` (every protocol)
    source: str  # CIDR
    destination: str  # CIDR
    source_ports: tuple[str, int, int] | None = None  # (op, lo, hi) with op eq|range|lt|gt|neq
    destination_ports: tuple[str, int, int] | None = None
    text: str = ""  # the line as written, for `show access-list`


@dataclass
class AccessList:
    """`access-list NAME ...` lines of one name, ordered by their `line N` numbers."""

    name: str
    line: int
    entries: list[AclEntry] = field(default_factory=list)


@dataclass
class Interface:
    """`interface vlan N` (or `bvi N`): only its `service-policy input` and `access-group
    input` lines mean something to buddylb (SPEC §2.4); the rest is ignored."""

    name: str
    line: int
    service_policies: list[Ref] = field(default_factory=list)
    access_groups: list[Ref] = field(default_factory=list)
    category: str = "interface"  # the ignore category of its other lines


@dataclass
class Context:
    """One independent virtual balancer (SPEC §1)."""

    name: str
    line: int
    rservers: dict[str, Rserver] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    farms: dict[str, Serverfarm] = field(default_factory=dict)
    stickies: dict[str, StickyGroup] = field(default_factory=dict)
    class_maps: dict[str, ClassMap] = field(default_factory=dict)
    lb_policies: dict[str, LbPolicy] = field(default_factory=dict)
    mm_policies: dict[str, MultiMatchPolicy] = field(default_factory=dict)
    ssl_proxies: dict[str, SslProxy] = field(default_factory=dict)
    service_policies: list[Ref] = field(default_factory=list)  # top-level (global) ones
    max_entries: int = DEFAULT_MAX_ENTRIES
    interfaces: list[Interface] = field(default_factory=list)
    access_lists: dict[str, AccessList] = field(default_factory=dict)
    access_groups: list[Ref] = field(default_factory=list)  # top-level: every VIP of the context
    management_policies: set[str] = field(default_factory=set)  # device policy-maps, never VIPs
    parameter_maps: dict[str, ParameterMap] = field(default_factory=dict)

    def active_policies(self) -> list[Ref]:
        """Every multi-match policy a `service-policy input` activates: the top-level ones,
        then those of the interfaces (one Ref per name; SPEC §2.4)."""
        out = list(self.service_policies)
        names = {r.name for r in out}
        for itf in self.interfaces:
            for ref in itf.service_policies:
                if ref.name not in names:
                    names.add(ref.name)
                    out.append(ref)
        return out


@dataclass
class StickyStoreSpec:
    """`sticky-store URL [prefix P] [timeout T]` (SPEC §2.1); URL forms: `config.storeurl`."""

    url: str
    line: int
    prefix: str = "buddylb:"
    timeout_s: float = 0.050
    writeback_rate: int = 20_000  # entries/s one node writes back after Redis restarted (SCALING.md)


@dataclass
class Diagnostic:
    """An error or warning with its place and the sentence that says how to fix it.

    `category` (SPEC §2.3, `check --json`): `syntax` (a line the parser refused), `config`
    (a rule across objects), `device` / `interface` / `unused` (ACE lines ignored, one
    warning per kind) or `mapping` (an ACE meaning buddylb changes)."""

    file: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"
    category: str = "syntax"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"

    @property
    def fix(self) -> str:
        """The sentence's remedy: our messages end with "...; <what to do>"."""
        head, sep, tail = self.message.rpartition("; ")
        return tail if sep and head else ""

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "category": self.category,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Ignored:
    """One ACE line buddylb accepted without acting on it, and why (`check --ace-report`)."""

    category: str  # device | interface | unused | mapping | unsupported
    line: int
    phrase: str  # the command words that name it, e.g. "logging" or "nat dynamic"
    why: str = ""  # for mapping / unsupported: what it means here


@dataclass
class Config:
    """A whole file: global lines, then contexts in file order."""

    file: str
    contexts: dict[str, Context] = field(default_factory=dict)
    sticky_store: StickyStoreSpec | None = None
    trusted_proxies: list[str] = field(default_factory=list)  # CIDR strings
    underscores_in_headers: bool = False  # forward request fields with "_" in the name (SPEC §5)
    timeouts: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    warnings: list[Diagnostic] = field(default_factory=list)
    user: Ref | None = None  # `user NAME`: run drops to it once every listener is bound
    group: Ref | None = None  # `group NAME`
    maxconn: int | None = None  # `maxconn N`: client connections open at once (None: from the descriptor limit)
    ignored: list[Ignored] = field(default_factory=list)  # ACE lines accepted without effect
