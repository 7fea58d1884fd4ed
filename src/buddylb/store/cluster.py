"""The cluster view (issue 15, SPEC §4 `show cluster`): which nodes share this sticky store.

Why: nodes that share a store but decide with different configurations split clients
across servers without any error.  Each node publishes a heartbeat, and every node can
list them all and say when their configurations differ.

Heartbeat: every `HEARTBEAT_S` a node writes `{prefix}node:ID` (JSON: id, address,
version, config checksum, entries, decisions per second, time) with a TTL of
`3 * HEARTBEAT_S`, and adds ID to the set `{prefix}nodes`.  The `{prefix}` hash tag keeps
every heartbeat key in one Redis Cluster slot, so one MGET reads them all.  A reader drops
from the set the ids whose key has expired (the node stopped or lost Redis).

Config checksum (`config_checksum`): a hash of what decides where a client goes, not of
the file: contexts, rservers (address, weight), farms (predictor, members with port,
weight, backup, buddy real group), scopes (key rule, timeout, farms) and policies.  VIP
addresses and ports, timeouts and admin settings are left out: nodes may legitimately
listen on their own addresses.  Runtime state (probes, `set rserver`) is not config.

This module builds and reads heartbeats; it never decides and never touches the tables.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from buddylb.core.snapshot import Snapshot

HEARTBEAT_S = 2.0


def config_checksum(snap: Snapshot) -> str:
    """16 hex digits over the decision-relevant configuration (see the module docstring)."""
    doc: list[Any] = []
    for cname in sorted(snap.contexts):
        ctx = snap.contexts[cname]
        rservers = sorted((n, a, w) for n, (a, w, _) in ctx.rservers.items())
        farms = [(f.name, f.predictor.kind, f.predictor.hash_address, f.predictor.hash_prefix4,
                  [(m.rserver, m.port, m.weight, m.backup, m.buddy_group) for m in f.members])
                 for f in sorted(ctx.farms.values(), key=lambda f: f.name)]
        scopes = [(s.name, s.kind, s.address, s.prefix4, s.prefix6, s.cookie_name, s.header_name, s.timeout_s,
                   s.activeconns, list(s.sticky_groups), list(s.farms))
                  for s in sorted(ctx.scopes.values(), key=lambda s: s.name)]
        policies = [(p.name, p.http, [(c.name, c.farm, c.backup_farm, c.sticky) for c in p.classes])
                    for p in sorted(ctx.policies.values(), key=lambda p: p.name)]
        doc.append((cname, rservers, farms, scopes, policies, ctx.max_entries))
    return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:16]


def node_key(prefix: str, node_id: str) -> str:
    return "{" + prefix + "}node:" + node_id


def nodes_key(prefix: str) -> str:
    return "{" + prefix + "}nodes"


class DecisionRate:
    """Decisions per second between two heartbeats, read from the balancer's decision tally
    (`tally.total`, io/tally.py: the data path pays nothing for it)."""

    __slots__ = ("tally", "_last_count", "_last_at", "_per_s")

    def __init__(self, tally: Any) -> None:
        self.tally = tally
        self._last_count = tally.total
        self._last_at = time.monotonic()
        self._per_s = 0.0

    def rate(self) -> float:
        """The rate over the last window of at least one second (asking often changes nothing)."""
        now = time.monotonic()
        if now - self._last_at >= 1.0:
            count = self.tally.total
            self._per_s = round((count - self._last_count) / (now - self._last_at), 1)
            self._last_count, self._last_at = count, now
        return self._per_s


def view(nodes: list[dict[str, Any]], me: str | None) -> dict[str, Any]:
    """The `show cluster` document: nodes sorted by id, and a warning per disagreement."""
    nodes = sorted(nodes, key=lambda n: str(n.get("id")))
    for n in nodes:
        n["self"] = n.get("id") == me
    warnings = []
    sums: dict[str, list[str]] = {}
    for n in nodes:
        sums.setdefault(str(n.get("config_checksum")), []).append(str(n.get("id")))
    if len(sums) > 1:
        groups = "; ".join(f"{s}: {', '.join(ids)}" for s, ids in sorted(sums.items()))
        warnings.append(f"configurations differ between nodes sharing this sticky store ({groups}): "
                        "clients may be split across servers; load the same configuration on every node")
    versions = {str(n.get("version")) for n in nodes}
    if len(versions) > 1:
        warnings.append(f"nodes run different buddylb versions ({', '.join(sorted(versions))})")
    return {"nodes": nodes, "warnings": warnings, "config_checksums": len(sums)}


def describe(node_id: str, address: str, version: str, snap: Snapshot, entries: int, per_s: float,
             checksums: dict[int, str]) -> dict[str, Any]:
    """This node's heartbeat.  `checksums` caches the checksum per snapshot (it is immutable)."""
    cs = checksums.get(id(snap))
    if cs is None:
        checksums.clear()
        cs = checksums[id(snap)] = config_checksum(snap)
    return {"id": node_id, "address": address, "version": version, "config_checksum": cs,
            "generation": snap.generation, "entries": entries, "decisions_per_s": per_s, "time": time.time()}


class Heartbeats:
    """Publishes this node's heartbeat and reads everyone's, through a store's client."""

    def __init__(self, client: Any, prefix: str, timeout_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.last: dict[str, Any] = {"nodes": [], "warnings": [], "config_checksums": 0}

    async def publish(self, me: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(node_key(self.prefix, me["id"]), json.dumps(me), px=int(HEARTBEAT_S * 3000))
        pipe.sadd(nodes_key(self.prefix), me["id"])
        await pipe.execute()

    async def read(self, me: dict[str, Any]) -> dict[str, Any]:
        """Every live node's heartbeat (this node's as it is now), with the warnings."""
        ids = sorted(await self.client.smembers(nodes_key(self.prefix)))
        values = await self.client.mget([node_key(self.prefix, i) for i in ids]) if ids else []
        nodes, gone = [], []
        for node_id, raw in zip(ids, values):
            if raw is None:
                gone.append(node_id)
            elif node_id != me["id"]:
                nodes.append(json.loads(raw))
        if gone:
            await self.client.srem(nodes_key(self.prefix), *gone)
        now = time.time()
        for n in nodes:
            n["age_s"] = round(max(0.0, now - float(n.get("time", now))), 1)
        self.last = view(nodes + [dict(me, age_s=0.0)], me["id"])
        return self.last
