"""`probe tcp|http|https|icmp NAME` and their sub-modes (SPEC §2.1), as the ACE has them.

Owns the words of probe lines; times are seconds when bare (SPEC §2.2).  `receive T`
bounds the wait for the answer (ACE's default 10 s); `expect status` may repeat (any
range passes); `expect regex R [offset N]` searches the answer; `connection term
forced` resets instead of closing; a URL may be absolute (`http://HOST/PATH`: the path
is requested with that Host); an https probe takes `ssl version` and `ssl cipher` (ACE
names, mapped to OpenSSL's).  It never runs a probe and never decides its targets.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from buddylb.config.grammar import Args, Command, Handler, LineError, block, keep
from buddylb.config.model import Probe, ProbeHeader, ProbeKind
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


def _receive(_s: ParseSession, p: Probe, a: Args) -> None:
    p.receive_timeout_s = a.time("receive timeout", "s")
    a.end()


def _connection_term(_s: ParseSession, p: Probe, a: Args) -> None:
    how = a.keyword("connection term", ("forced", "graceful"))
    a.end()
    p.forced_close = how == "forced"


def _expect_regex(_s: ParseSession, p: Probe, a: Args) -> None:
    text = a.word("regex")
    try:
        re.compile(text)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise LineError(f'expect regex "{text}" does not compile ({exc}); fix it (Python re syntax)') from None
    if a.accept("offset"):
        p.expect_offset = a.integer("expect regex offset", 0, 4096)
    a.accept("cache")  # ACE caches the compiled regex; so do we, always
    a.end()
    p.expect_regex = text


def _ignored(_s: ParseSession, p: Probe, a: Args) -> None:
    _s.ignore("unused", a.number, f"probe {' '.join(w.lower() for w in a.line.words[:1])}")


TCP_COMMANDS: dict[str, Command] = {
    "port": Command("port P", _port, once="port"),
    "interval": Command("interval T", _interval, once="interval"),
    "faildetect": Command("faildetect N", _faildetect, once="faildetect"),
    "passdetect interval": Command("passdetect interval T", _pass_interval, once="passdetect interval"),
    "passdetect count": Command("passdetect count N", _pass_count, once="passdetect count"),
    "open": Command("open T", _open, once="open"),
    "receive": Command("receive T", _receive, once="receive"),
    "connection term": Command("connection term forced|graceful", _connection_term, once="connection term"),
    "expect regex": Command("expect regex REGEX [offset N]", _expect_regex, once="expect regex"),
    "append-port-hosttag": Command("append-port-hosttag", _ignored, hidden=True),
}
ICMP_COMMANDS = {k: v for k, v in TCP_COMMANDS.items() if k not in ("port", "connection term", "expect regex")}


def _request(_s: ParseSession, p: Probe, a: Args) -> None:
    method = a.keyword("request method", ("get", "head"))
    p.method = "HEAD" if method == "head" else "GET"
    if a.accept("url"):
        url = a.word("url")
        if "://" in url:
            p.host, url = _absolute(url)
        # An origin-form target (RFC 9112 §3.2.1): visible ASCII, starts with "/", no fragment.
        if not url.startswith("/") or any(not 0x21 <= ord(c) <= 0x7E or c == "#" for c in url):
            raise LineError(
                f'probe url "{url}" is not a request path; write a path that starts with "/" '
                "in visible ASCII without blanks or '#' (e.g. /health?full=1), or an absolute http://HOST/PATH"
            )
        p.url = url
    a.end()


def _absolute(url: str) -> tuple[str, str]:
    """`http://host[:port]/path?q` -> (Host header value, origin-form path)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        raise LineError(f'probe url "{url}" is not an http:// or https:// URL; write http://HOST/PATH or a path')
    path = parts.path or "/"
    return parts.netloc, path + (f"?{parts.query}" if parts.query else "")


def _expect(_s: ParseSession, p: Probe, a: Args) -> None:
    lo = a.integer("expect status", 0, 999)
    hi = a.integer("expect status upper bound", 0, 999) if a.more() else lo
    a.end()
    if hi < lo:
        raise LineError(f"expect status {lo} {hi} is an empty range; write the lower status first")
    p.expect.append((lo, hi))  # ACE: several lines, any range passes


def _header(_s: ParseSession, p: Probe, a: Args) -> None:
    name = a.token("probe header name")
    if a.accept("header-value") is None:
        raise LineError(f'probe header "{name}" needs its value; write "header NAME header-value V"')
    value = a.word("header value")
    a.end()
    p.headers.append(ProbeHeader(name, value))


HTTP_COMMANDS: dict[str, Command] = {
    "request method": Command("request method get|head [url /PATH|http://HOST/PATH]", _request, once="request"),
    "expect status": Command("expect status LO [HI]", _expect),
    "header": Command("header NAME header-value V", _header),
}

# ACE cipher suite names (`ssl cipher NAME [PRIORITY]`) -> OpenSSL's.
ACE_CIPHERS: dict[str, str] = {
    "rsa_with_aes_128_cbc_sha": "AES128-SHA",
    "rsa_with_aes_256_cbc_sha": "AES256-SHA",
    "rsa_with_3des_ede_cbc_sha": "DES-CBC3-SHA",
    "rsa_with_rc4_128_sha": "RC4-SHA",
    "rsa_with_rc4_128_md5": "RC4-MD5",
    "rsa_with_des_cbc_sha": "DES-CBC-SHA",
    "rsa_with_aes_128_cbc_sha256": "AES128-SHA256",
    "rsa_with_aes_256_cbc_sha256": "AES256-SHA256",
    "rsa_with_aes_128_gcm_sha256": "AES128-GCM-SHA256",
    "rsa_with_aes_256_gcm_sha384": "AES256-GCM-SHA384",
    "ecdhe_rsa_with_aes_128_gcm_sha256": "ECDHE-RSA-AES128-GCM-SHA256",
    "ecdhe_rsa_with_aes_256_gcm_sha384": "ECDHE-RSA-AES256-GCM-SHA384",
}
def openssl_has(cipher: str) -> bool:
    """Whether this Python's OpenSSL offers the suite (RC4 and DES are gone from modern
    builds): a suite it lacks is left out with a warning rather than failing the VIP."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(cipher)
    except ssl.SSLError:
        return False
    return True


_VERSIONS = {"all": None, "tlsv1": "TLSv1", "tlsv1_1": "TLSv1_1", "tlsv1_2": "TLSv1_2", "sslv3": "TLSv1"}


def _ssl_version(s: ParseSession, p: Probe, a: Args) -> None:
    word = a.keyword("ssl version", tuple(_VERSIONS))
    a.end()
    p.ssl_min_version = _VERSIONS[word]
    if word != "all":
        s.mapping(
            "probe ssl version",
            a.number,
            f'probe "{p.name}": "ssl version {word}" pins one version on the ACE; buddylb offers it and every '
            "newer one (SSLv3 is never offered: TLS 1.0 is the floor)",
        )


def _ssl_cipher(_s: ParseSession, p: Probe, a: Args) -> None:
    name = a.word("cipher name")
    if a.more():
        a.integer("cipher priority", 1, 10)
    a.end()
    if name.lower() == "rsa_any":
        return
    cipher = ACE_CIPHERS.get(name.lower())
    if cipher is None:
        raise LineError(
            f'ssl cipher "{name}" is not an ACE cipher suite buddylb knows; write RSA_ANY or one of '
            + ", ".join(k.upper() for k in ACE_CIPHERS)
        )
    if not openssl_has(cipher):
        _s.mapping("ssl cipher unavailable", a.number,
                   f'ssl cipher {name} ({cipher}) is not available in this OpenSSL; it is left out')
        return
    p.ssl_ciphers.append(cipher)


HTTPS_COMMANDS: dict[str, Command] = {
    "ssl version": Command("ssl version all|tlsv1|tlsv1_1|tlsv1_2", _ssl_version, once="ssl version"),
    "ssl cipher": Command("ssl cipher RSA_ANY|NAME [PRIORITY]", _ssl_cipher),
}

TCP = block("probe tcp", TCP_COMMANDS)
HTTP = block("probe http", TCP_COMMANDS, HTTP_COMMANDS)
HTTPS = block("probe https", TCP_COMMANDS, HTTP_COMMANDS, HTTPS_COMMANDS)
ICMP = block("probe icmp", ICMP_COMMANDS)


def _opener(kind: ProbeKind) -> Handler:
    def open_probe(s: ParseSession, _target: Any, a: Args) -> Probe:
        ctx = s.context(a.number)
        name = a.name("probe name")
        claim_name(
            {f"probe {p.kind}": {p.name: p} for p in ctx.probes.values() if p.name == name}, name, "probe"
        )
        probe = ctx.probes[name] = Probe(name=name, line=a.number, kind=kind)
        with keep(probe):
            a.end()
        return probe

    return open_probe


def _probe_hint(_s: ParseSession, _target: Any, a: Args) -> None:
    kind = a.word("probe type")
    raise LineError(
        f'probe type "{kind}" is not supported; write "probe tcp|http|https|icmp NAME" '
        "(buddylb does not run ACE's dns, ftp, smtp, scripted ... probes)"
    )


TOP: dict[str, Command] = {
    "probe tcp": Command("probe tcp NAME", _opener("tcp"), block=TCP),
    "probe http": Command("probe http NAME", _opener("http"), block=HTTP),
    "probe https": Command("probe https NAME", _opener("https"), block=HTTPS),
    "probe icmp": Command("probe icmp NAME", _opener("icmp"), block=ICMP),
    "probe": Command("probe tcp|http|https|icmp NAME", _probe_hint, hidden=True),
}
