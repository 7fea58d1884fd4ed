"""The `sticky-store` URL forms (SPEC §2.1, issue 15), parsed once for `check` and for `run`.

- `redis://HOST:PORT/DB` (`rediss://` for TLS): one Redis server.
- `redis-sentinel://H1:P1,H2:P2,H3:P3/MASTER/DB`: the primary named MASTER, found (and
  found again after a failover) through the Sentinels listed.
- `redis-cluster://H:P[,H:P...]`: a Redis Cluster, discovered from any node listed (a
  cluster has only database 0).

Pure: it parses and explains what is wrong (ValueError with the fix); it never connects.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

EXAMPLES = ("redis://127.0.0.1:6379/0, redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0 "
            "or redis-cluster://10.0.0.1:7000,10.0.0.2:7000")


@dataclass(frozen=True)
class StoreUrl:
    kind: str  # "redis" | "sentinel" | "cluster"
    url: str
    hosts: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seed nodes
    master: str = ""
    db: int = 0


def _host_port(text: str, default: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        host, port = text, str(default)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'"{text}" is not HOST:PORT')
    return host, int(port)


def parse_store_url(url: str) -> StoreUrl:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f'sticky-store "{url}" is not a Redis URL; write e.g. {EXAMPLES}')
    if scheme in ("redis", "rediss"):
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            raise ValueError(f'sticky-store "{url}" has a bad port; write e.g. redis://127.0.0.1:6379/0') from None
        db = parts.path.lstrip("/")
        if not parts.hostname or (db and not (db.isascii() and db.isdigit())) or parts.query or parts.fragment:
            raise ValueError(f'sticky-store "{url}" is not a Redis URL; write e.g. redis://127.0.0.1:6379/0')
        return StoreUrl("redis", url, db=int(db or 0))
    if scheme not in ("redis-sentinel", "redis-cluster"):
        raise ValueError(f'sticky-store "{url}" is not a Redis URL (unknown scheme "{scheme}"); write e.g. {EXAMPLES}')
    netloc, _, path = rest.partition("/")
    try:
        hosts = tuple(_host_port(h, 26379 if scheme == "redis-sentinel" else 6379) for h in netloc.split(",") if h)
    except ValueError as exc:
        raise ValueError(f'sticky-store "{url}": {exc}; list the nodes as H1:P1,H2:P2') from None
    if not hosts:
        raise ValueError(f'sticky-store "{url}" lists no node; write e.g. {EXAMPLES}')
    words = [w for w in path.split("/") if w]
    if scheme == "redis-cluster":
        if words:
            raise ValueError(f'sticky-store "{url}": a Redis Cluster has no database or name after the nodes; '
                             "write redis-cluster://H1:P1,H2:P2")
        return StoreUrl("cluster", url, hosts)
    if not words or len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
        raise ValueError(f'sticky-store "{url}": write redis-sentinel://H1:P1,H2:P2,H3:P3/MASTER/DB '
                         "(MASTER: the name the Sentinels monitor)")
    return StoreUrl("sentinel", url, hosts, master=words[0], db=int(words[1]) if len(words) == 2 else 0)
