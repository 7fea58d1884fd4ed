"""Operator mutations: `clear sticky database ...` and taking an rserver in/out of service.

Kept apart from `views` (which never mutates) so a reader finds every state change an
operator can make in one file."""
from __future__ import annotations

from typing import Mapping

from buddylb.core.keys import parse_key, split_both
from buddylb.core.snapshot import Snapshot
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable
from buddylb.errors import CommandError


def clear_sticky_database(snap: Snapshot, tables: Mapping[str, StickyTable], *, context: str | None = None,
                          group: str | None = None, key: str | None = None, rserver: str | None = None) -> int:
    """Remove the entries matching every given filter; returns how many went.

    `key` is a key as `show sticky database` prints it, or a bare client address, which
    on `address both` scopes matches every entry of that client whatever the VIP."""
    if context is not None and context not in snap.contexts:
        raise CommandError(f'context "{context}" does not exist', 2)
    names = [context] if context is not None else list(tables)
    where = f" in context {context}" if context is not None else ""
    if group is not None and not any(snap.contexts[n].has_sticky_group(group) for n in names):
        raise CommandError(f'sticky group "{group}" does not exist{where}', 2)
    if rserver is not None and not any(rserver in snap.contexts[n].rservers for n in names):
        raise CommandError(f'rserver "{rserver}" does not exist{where}', 2)
    removed = 0
    for name in names:
        table = tables.get(name)
        if table is None:
            continue
        matchers = {s.name: _key_matcher(s, key) for s in snap.contexts[name].scopes.values()} if key else {}

        def doomed(st, k, e) -> bool:
            scope = st.scope
            if group is not None and group != scope.name and group not in scope.sticky_groups:
                return False
            if key is not None and not matchers.get(scope.name, _never)(k):
                return False
            return rserver is None or rserver in e.farms

        removed += table.clear(doomed)
    return removed


def _never(_k) -> bool:
    return False


def _key_matcher(scope, text: str):
    try:
        if scope.kind == "ip-netmask" and scope.address == "both" and "->" not in text:
            source = split_both(parse_key(scope, f"{text}->0.0.0.0"))[0]  # the client's (masked) source
            return lambda k: isinstance(k, int) and split_both(k)[0] == source
        parsed = parse_key(scope, text)
    except (ValueError, OSError):
        return _never
    return lambda k: k == parsed


ADMIN_STATES = ("inservice", "outofservice", "drain")


def set_rserver_state(snap: Snapshot, state: RuntimeState, name: str, admin: str,
                      context: str | None = None) -> list[str]:
    """Operator override of an rserver host in every farm, without a reload (SPEC §4 `set
    rserver`; ACE `no inservice`, HAProxy `set server state`).  `admin` is one of
    ADMIN_STATES.  Out of service: no new connection at all, open ones finish (issue 3
    item 5).  Drain: clients the sticky database ties to it keep it, new clients avoid
    it (core.state, README "Drain")."""
    if admin not in ADMIN_STATES:
        raise CommandError(f'rserver state "{admin}" is not one of: {", ".join(ADMIN_STATES)}', 2)
    hits = []
    for ctx in snap.contexts.values():
        if (context is None or ctx.name == context) and name in ctx.rservers:
            if admin == "drain":
                state.set_admin_drain(ctx.name, name)
            else:
                state.set_admin_inservice(ctx.name, name, admin == "inservice")
            hits.append(ctx.name)
    if not hits:
        raise CommandError(f'rserver "{name}" does not exist', 2)
    return hits
