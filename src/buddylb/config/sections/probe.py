"""`probe tcp NAME` / `probe http NAME` and their sub-modes (SPEC §2.1).

Owns the words of probe lines; times are seconds when bare (SPEC §2.2).  It never runs
a probe and never decides which rservers a probe targets.
"""

from __future__ import annotations

from typing import Any

from buddylb.config.grammar import Args, Command, Handler, LineError, block, keep
from buddylb.config.model import Probe, ProbeHeader
from buddylb.config.session import ParseSession, claim_name


def _port(_s: ParseSession, p: Probe, a: Args) -> None:
    p.port = a.port("probe port")
    a.end()


def _interval(_s: ParseSession, p: Probe, a: Args) -> None:
    p.interval_s = a.time("interval", "s")
    a.end()


def _faildetect(_s: ParseSession, p: Probe, a: Args) -> None:
    p.faildetect = a.integer("faildetect", 1, 65535)
    a.end()


def _pass_interval(_s: ParseSession, p: Probe, a: Args) -> None:
    p.passdetect_interval_s = a.time("passdetect interval", "s")
    a.end()


def _pass_count(_s: ParseSession, p: Probe, a: Args) -> None:
    p.passdetect_count = a.integer("passdetect count", 1, 65535)
    a.end()


def _open(_s: ParseSession, p: Probe, a: Args) -> None:
    p.open_timeout_s = a.time("open timeout", "s")
    a.end()


TCP_COMMANDS: dict[str, Command] = {
    "port": Command("port P", _port, once="port"),
    "interval": Command("interval T", _interval, once="interval"),
    "faildetect": Command("faildetect N", _faildetect, once="faildetect"),
    "passdetect interval": Command("passdetect interval T", _pass_interval, once="passdetect interval"),
    "passdetect count": Command("passdetect count N", _pass_count, once="passdetect count"),
    "open": Command("open T", _open, once="open"),
}


def _request(_s: ParseSession, p: Probe, a: Args) -> None:
    method = a.keyword("request method", ("get", "head"))
    p.method = "HEAD" if method == "head" else "GET"
    if a.accept("url"):
        url = a.word("url")
        # An origin-form target (RFC 9112 §3.2.1): visible ASCII, starts with "/", no fragment.
        if not url.startswith("/") or any(not 0x21 <= ord(c) <= 0x7E or c == "#" for c in url):
            raise LineError(
                f'probe url "{url}" is not a request path; write a path that starts with "/" '
                "in visible ASCII without blanks or '#' (e.g. /health?full=1)"
            )
        p.url = url
    a.end()


def _expect(_s: ParseSession, p: Probe, a: Args) -> None:
    lo = a.integer("expect status", 100, 599)
    hi = a.integer("expect status upper bound", 100, 599) if a.more() else lo
    a.end()
    if hi < lo:
        raise LineError(f"expect status {lo} {hi} is an empty range; write the lower status first")
    p.expect_lo, p.expect_hi = lo, hi


def _header(_s: ParseSession, p: Probe, a: Args) -> None:
    name = a.token("probe header name")
    if a.accept("header-value") is None:
        raise LineError(f'probe header "{name}" needs its value; write "header NAME header-value V"')
    value = a.word("header value")
    a.end()
    p.headers.append(ProbeHeader(name, value))


HTTP_COMMANDS: dict[str, Command] = {
    "request method": Command("request method get|head [url /PATH]", _request, once="request"),
    "expect status": Command("expect status LO [HI]", _expect, once="expect status"),
    "header": Command("header NAME header-value V", _header),
}

TCP = block("probe tcp", TCP_COMMANDS)
HTTP = block("probe http", TCP_COMMANDS, HTTP_COMMANDS)


def _opener(kind: str) -> Handler:
    def open_probe(s: ParseSession, _target: Any, a: Args) -> Probe:
        ctx = s.context(a.number)
        name = a.name("probe name")
        claim_name(
            {f"probe {p.kind}": {p.name: p} for p in ctx.probes.values() if p.name == name}, name, "probe"
        )
        probe = ctx.probes[name] = Probe(name=name, line=a.number, kind="http" if kind == "http" else "tcp")
        with keep(probe):
            a.end()
        return probe

    return open_probe


def _probe_hint(_s: ParseSession, _target: Any, a: Args) -> None:
    kind = a.word("probe type")
    raise LineError(f'probe type "{kind}" is not supported; write "probe tcp NAME" or "probe http NAME"')


TOP: dict[str, Command] = {
    "probe tcp": Command("probe tcp NAME", _opener("tcp"), block=TCP),
    "probe http": Command("probe http NAME", _opener("http"), block=HTTP),
    "probe": Command("probe tcp|http NAME", _probe_hint, hidden=True),
}
