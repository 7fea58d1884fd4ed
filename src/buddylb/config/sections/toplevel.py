"""Top-level lines without a body (SPEC §2, §2.1): `context NAME`, the global settings
(`sticky-store`, `trusted-proxy`, `timeout NAME T`, `user NAME`, `group NAME`, `maxconn N`,
`http underscores-in-headers`, which
must come before the first context or object) and the per-context `sticky-table max-entries N` and
`service-policy input NAME`.

Owns the words of these lines; it never connects to a sticky store or opens a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from buddylb.config import units
from buddylb.config.grammar import Args, Command, LineError, block
from buddylb.config.model import DEFAULT_TIMEOUTS, Ref, StickyStoreSpec
from buddylb.config.session import ParseSession
from buddylb.config.storeurl import parse_store_url


@dataclass
class _ContextLine:
    """A `context NAME` line, kept until its sub-mode says what it was."""

    name: str
    line: int
    previous: str | None
    created: bool
    category: str = "device"


def _context(s: ParseSession, _target: Any, a: Args) -> _ContextLine:
    name = a.name("context name")
    a.end()
    line = _ContextLine(name, a.number, s.current, name not in s.config.contexts)
    s.enter_context(name, a.number)
    return line


def _context_admin(s: ParseSession, c: _ContextLine, a: Args) -> _ContextLine:
    """`allocate-interface`, `member` ... under `context NAME`: in an Admin context's file
    that line *defines* the ACE context NAME, whose objects live in its own running-config
    (SPEC §2.4). It is a context-administration command: the objects that follow stay in
    the context they were in."""
    if s.current == c.name and c.previous != c.name:
        s.ignore("device", c.line, "context")
        s.current = c.previous
        if c.created:
            s.config.contexts.pop(c.name, None)
        c.created = False
    s.ignore("device", a.number, "context")
    return c


_CONTEXT = block(
    "context",
    {w: Command(f"{w} ...", _context_admin) for w in ("allocate-interface", "member", "shared-vlan-hostid", "peer")},
)


def _check_store_url(url: str) -> None:
    try:
        parse_store_url(url)  # redis://, redis-sentinel://, redis-cluster:// (config.storeurl)
    except ValueError as exc:
        raise LineError(str(exc)) from None


def _sticky_store(s: ParseSession, _target: Any, a: Args) -> None:
    s.global_line("sticky-store")
    url = a.word("Redis URL")
    _check_store_url(url)
    spec = StickyStoreSpec(url=url, line=a.number)
    seen: set[str] = set()
    while a.more():
        option = a.keyword("sticky-store option", ("prefix", "timeout", "writeback-rate"))
        if option in seen:
            raise LineError(f'sticky-store option "{option}" is given twice; keep one')
        seen.add(option)
        if option == "prefix":
            spec.prefix = a.word("key prefix")
            if not spec.prefix:
                raise LineError('sticky-store prefix is empty; write a prefix such as "buddylb:"')
        elif option == "writeback-rate":  # entries per second a node writes back after a restart
            spec.writeback_rate = a.integer("sticky-store writeback-rate", 1, 1_000_000)
        else:
            spec.timeout_s = a.time("sticky-store timeout", "ms")  # SPEC §2.2: bare = ms
    s.config.sticky_store = spec


def _trusted_proxy(s: ParseSession, _target: Any, a: Args) -> None:
    s.global_line("trusted-proxy")
    cidr = a.convert("trusted proxy", lambda t: units.parse_cidr(t, "trusted-proxy"))
    a.end()
    if cidr not in s.config.trusted_proxies:
        s.config.trusted_proxies.append(cidr)


def _underscores(s: ParseSession, _target: Any, a: Args) -> None:
    """`http underscores-in-headers allow|drop`: request header fields whose name has
    `_` are dropped before forwarding by default (SPEC §5, as nginx does: some backends
    read `X_Forwarded_For` as `X-Forwarded-For`); `allow` forwards them."""
    s.global_line("http underscores-in-headers")
    choice = a.keyword("underscores-in-headers choice", ("allow", "drop"))
    a.end()
    s.once_per_file(("http underscores-in-headers",), "http underscores-in-headers", a.number)
    s.config.underscores_in_headers = choice == "allow"


def _timeout(s: ParseSession, _target: Any, a: Args) -> None:
    s.global_line("timeout")
    names = tuple(DEFAULT_TIMEOUTS)
    name = a.keyword("timeout name", names)
    value = a.time(f"timeout {name}", "s")
    a.end()
    s.once_per_file(("timeout", name), f"timeout {name}", a.number)
    s.config.timeouts[name] = value


def _run_as(word: str) -> Callable[[ParseSession, Any, Args], None]:
    """`user NAME` / `group NAME` (SPEC §2.1); `run` looks the name up (service/privileges.py)."""

    def handle(s: ParseSession, _target: Any, a: Args) -> None:
        s.global_line(word)
        ref = Ref(a.name(f"{word} name"), a.number)
        a.end()
        s.once_per_file((word,), word, a.number)
        setattr(s.config, word, ref)

    return handle


MAXCONN_MAX = 10_000_000


def _maxconn(s: ParseSession, _target: Any, a: Args) -> None:
    """`maxconn N` (SPEC §2.1, §5): client connections open at once; accept pauses there.
    Without it `run` derives the number from the descriptor limit (io/descriptors.py)."""
    s.global_line("maxconn")
    value = a.integer("maxconn", 1, MAXCONN_MAX)
    a.end()
    s.once_per_file(("maxconn",), "maxconn", a.number)
    s.config.maxconn = value


def _sticky_table(s: ParseSession, _target: Any, a: Args) -> None:
    ctx = s.context(a.number)
    value = a.integer("sticky-table max-entries", 1, 1_000_000_000)
    a.end()
    s.once_per_file(
        ("sticky-table", ctx.name), "sticky-table max-entries", a.number, f' in context "{ctx.name}"'
    )
    ctx.max_entries = value


def _service_policy(s: ParseSession, _target: Any, a: Args) -> None:
    ctx = s.context(a.number)
    name = a.name("policy-map name")
    a.end()
    for ref in ctx.service_policies:
        if ref.name == name:
            raise LineError(
                f'service-policy input "{name}" is already active (line {ref.line}); remove one of the two lines'
            )
    ctx.service_policies.append(Ref(name, a.number))


TOP: dict[str, Command] = {
    "context": Command("context NAME", _context, block=_CONTEXT),
    "sticky-store": Command(
        "sticky-store redis://HOST:PORT/DB|redis-sentinel://H:P,H:P/MASTER/DB|redis-cluster://H:P,H:P [prefix P] [timeout T] [writeback-rate N]", _sticky_store, once="sticky-store"
    ),
    "trusted-proxy": Command("trusted-proxy CIDR", _trusted_proxy),
    "http underscores-in-headers": Command("http underscores-in-headers allow|drop", _underscores),
    "timeout": Command(f"timeout {'|'.join(DEFAULT_TIMEOUTS)} T", _timeout),
    "user": Command("user NAME", _run_as("user")),
    "group": Command("group NAME", _run_as("group")),
    "maxconn": Command("maxconn N", _maxconn),
    "sticky-table max-entries": Command("sticky-table max-entries N", _sticky_table),
    "service-policy input": Command("service-policy input POLICY-MAP", _service_policy),
}
