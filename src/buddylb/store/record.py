"""How one sticky entry is written in Redis: its key, its packed value, the Lua scripts.

Owns the byte layout only (no I/O, no clock), so the data path, the anti-entropy pass,
the benchmark and the tests share one definition.

Key: `{prefix}{tag}:{client}` (SPEC §2.1 prefix).  `tag` is 6 characters of a hash of
(context, scope name, the scope's farms in order): two nodes whose configurations give a
scope different farms never read each other's farm indices, they simply do not share
that scope (and `show cluster` warns that their configurations differ).  `client` is the
sticky key packed: an IP key (an int) as its big-endian bytes in base64url, a cookie or
header value as itself, an SSL session id in base64url.  A both-addresses IPv4 key is
12 characters, so with the default prefix a key is 27 bytes.

Value: `LAST,RS0,RS1,...`: the index of the last farm in the scope's farms, then the
rserver remembered per farm by name (empty: never used there).  Names, not indices, so
adding or removing an rserver never reinterprets a stored entry.  One string per entry
instead of a hash: ~30 bytes less per entry in Redis (measured in SCALING.md).

There is no stamp in the value: the key's TTL *is* the stamp.  Every write sets the TTL
to the scope's timeout counted from the entry's last activity, so of two copies of one
entry the one with the longer remaining TTL is the more recent: the write-back script
keeps it (anti-entropy, newest wins).
"""
from __future__ import annotations

import base64
import hashlib
from typing import Hashable

from buddylb.core.snapshot import Scope

# SPEC §3 insert-or-get: store ours only if no entry exists, else return the existing one.
INSERT_OR_GET = """
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# Anti-entropy: write ours unless Redis holds a copy at least as recent (a TTL at least
# as long: see the module docstring). Returns 1 when ours was written.
WRITE_BACK = """
local t = redis.call('PTTL', KEYS[1])
if t >= tonumber(ARGV[2]) or t == -1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_tags: dict[tuple[str, str, tuple[str, ...]], str] = {}


def scope_tag(context: str, scope: Scope) -> str:
    """Six base64url characters naming (context, scope, farms); cached per shape."""
    shape = (context, scope.name, scope.farms)
    tag = _tags.get(shape)
    if tag is None:
        digest = hashlib.blake2b("\0".join((context, scope.name, *scope.farms)).encode(), digest_size=6).digest()
        tag = _tags[shape] = base64.urlsafe_b64encode(digest).decode()[:6]
    return tag


def pack_client(key: Hashable) -> str:
    if isinstance(key, int):
        raw = key.to_bytes((key.bit_length() + 7) // 8 or 1, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if isinstance(key, bytes):
        return base64.urlsafe_b64encode(key).decode().rstrip("=")
    return str(key)


def entry_key(prefix: str, context: str, scope: Scope, key: Hashable) -> str:
    return f"{prefix}{scope_tag(context, scope)}:{pack_client(key)}"


def pack(last: int, farms: tuple) -> str:
    return f"{last}," + ",".join(rs or "" for rs in farms)


def unpack(value: str | None, scope: Scope) -> tuple[int, tuple] | None:
    """(last farm index, rserver per farm) or None for a missing or foreign value."""
    if not value:
        return None
    parts = value.split(",")
    if len(parts) != len(scope.farms) + 1 or not parts[0].isdigit():
        return None
    last = int(parts[0])
    farms = tuple(p or None for p in parts[1:])
    if last >= len(farms) or farms[last] is None:
        return None
    return last, farms
