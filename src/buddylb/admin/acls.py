"""`show access-list [NAME]` (SPEC §4, §2.4): each access-list line with its hit count,
and per VIP the connections its access-groups denied.

The view reads the compiled lists of the snapshot and the counters of the running
balancer (`core.acl.AclCounters`); it never changes them (`admin.render` prints it).
Registered in `admin.api.ROUTES`, `admin.commands.COMMANDS` and
`admin.render.RENDERERS` like every other show command.
"""
from __future__ import annotations

from typing import Any

from buddylb.core.acl import AclCounters
from buddylb.core.snapshot import Snapshot
from buddylb.errors import CommandError


def show_access_list(snap: Snapshot, counters: AclCounters, name: str | None = None) -> dict[str, Any]:
    lists = []
    for ctx_name, acls in snap.acls.items():
        for acl in acls.values():
            if name is not None and acl.name != name:
                continue
            lines = [
                {"line": ln.seq, "config_line": ln.line, "action": "permit" if ln.permit else "deny",
                 "text": ln.text, "hits": counters.hits.get((ctx_name, acl.name, ln.seq), 0)}
                for ln in acl.lines
            ]
            lists.append({"context": ctx_name, "name": acl.name, "lines": lines})
    if name is not None and not lists:
        raise CommandError(f'access-list "{name}" does not exist', 2)
    vips = [
        {"context": v.context, "vip": label, "access_lists": [a.name for a in v.acl.acls],
         "denied": counters.denied.get((v.context, label), 0),
         "implicit_deny": counters.implicit_denies.get((v.context, label), 0)}
        for v, label in [*((v, v.name) for v in snap.vips.values()),
                         *((v, f"{v.name}/udp") for v in snap.udp_vips.values())]
        if v.acl is not None and (name is None or any(a.name == name for a in v.acl.acls))
    ]
    return {"access_lists": lists, "vips": vips}
