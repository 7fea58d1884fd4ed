"""`ssl-proxy service NAME` with `cert FILE`, `key FILE`, `chain FILE` (SPEC §2.1).

Owns the words of these lines; paths are kept as written (relative to the config
file's folder).  It never opens a file: `config.validate` loads the certificate and key.
"""

from __future__ import annotations

from typing import Any

from buddylb.config.grammar import Args, Command, LineError, block, keep
from buddylb.config.model import Ref, SslProxy
from buddylb.config.session import ParseSession, claim_name


def _path(a: Args, what: str) -> str:
    path = a.word(what)
    a.end()
    if not path:
        raise LineError(
            f"the {what} path is empty; write the file name (relative to the config file's folder)"
        )
    return path


def _cert(_s: ParseSession, sp: SslProxy, a: Args) -> None:
    sp.cert, sp.cert_line = _path(a, "certificate"), a.number


def _key(_s: ParseSession, sp: SslProxy, a: Args) -> None:
    sp.key, sp.key_line = _path(a, "key"), a.number


def _chain(_s: ParseSession, sp: SslProxy, a: Args) -> None:
    sp.chain, sp.chain_line = _path(a, "chain"), a.number


def _advanced(_s: ParseSession, sp: SslProxy, a: Args) -> None:
    sp.params = Ref(a.name("parameter-map name"), a.number)
    a.end()


SERVICE = block(
    "ssl-proxy service",
    {
        "cert": Command("cert FILE", _cert, once="cert"),
        "key": Command("key FILE", _key, once="key"),
        "chain": Command("chain FILE", _chain, once="chain"),
        "ssl advanced-options": Command("ssl advanced-options PARAMETER-MAP", _advanced, once="ssl advanced-options"),
    },
)


def _ssl_proxy_service(s: ParseSession, _target: Any, a: Args) -> SslProxy:
    ctx = s.context(a.number)
    name = a.name("ssl-proxy service name")
    claim_name({"ssl-proxy service": ctx.ssl_proxies}, name, "ssl-proxy service")
    sp = ctx.ssl_proxies[name] = SslProxy(name=name, line=a.number)
    with keep(sp):
        a.end()
    return sp


def _ssl_proxy_hint(_s: ParseSession, _target: Any, a: Args) -> None:
    raise LineError(
        f'"{a.line.text}" is not supported; write "ssl-proxy service NAME" with cert and key lines'
    )


TOP: dict[str, Command] = {
    "ssl-proxy service": Command("ssl-proxy service NAME", _ssl_proxy_service, block=SERVICE),
    "ssl-proxy": Command("ssl-proxy service NAME", _ssl_proxy_hint, hidden=True),
}
