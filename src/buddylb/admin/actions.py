"""Operator mutations: `clear sticky database ...` and taking an rserver in/out of service.

Kept apart from `views` (which never mutates) so a reader finds every state change an
operator can make in one file."""
from __future__ import annotations

from typing import Mapping

from buddylb.core.keys import parse_key
from buddylb.core.snapshot import Snapshot
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable
from buddylb.errors import CommandError


def clear_sticky_database(snap: Snapshot, tables: Mapping[str, StickyTable], *, context: str | None = None,
                          group: str | None = None, key: str | None = None, rserver: str | None = None) -> int:
    """Remove the entries matching every given filter; returns how many went."""
    if context is not None and context not in snap.contexts:
        raise CommandError(f'context "{context}" does not exist', 2)
    removed = 0
    for name, table in tables.items():
        if context is not None and name != context:
            continue
        ctx = snap.contexts[name]
        if group is not None and not any(group == s.name or group in s.sticky_groups for s in ctx.scopes.values()):
            if context is not None or len(tables) == 1:
                raise CommandError(f'sticky group "{group}" does not exist in context {name}', 2)
            continue
        if rserver is not None and rserver not in ctx.rservers:
            if context is not None or len(tables) == 1:
                raise CommandError(f'rserver "{rserver}" does not exist in context {name}', 2)
            continue
        parsed: dict[str, object] = {}
        if key is not None:
            for s in ctx.scopes.values():
                try:
                    parsed[s.name] = parse_key(s, key)
                except (ValueError, OSError):
                    continue

        def doomed(st, k, e) -> bool:
            scope = st.scope
            if group is not None and group != scope.name and group not in scope.sticky_groups:
                return False
            if key is not None and parsed.get(scope.name) != k:
                return False
            if rserver is not None and rserver not in e.farms:
                return False
            return True

        removed += table.clear(doomed)
    return removed


def set_rserver_state(snap: Snapshot, state: RuntimeState, name: str, inservice: bool,
                      context: str | None = None) -> list[str]:
    """Operator override of an rserver in every farm (like ACE `no inservice` without a reload).

    Out of service drains: no new connections, open ones finish (issue 3 item 5)."""
    hits = []
    for ctx in snap.contexts.values():
        if (context is None or ctx.name == context) and name in ctx.rservers:
            state.set_admin_inservice(ctx.name, name, inservice)
            hits.append(ctx.name)
    if not hits:
        raise CommandError(f'rserver "{name}" does not exist', 2)
    return hits
