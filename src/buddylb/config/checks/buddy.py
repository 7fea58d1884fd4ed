"""Buddy groups (SPEC §1, §2.3): buddy sticky groups whose members agree on the key, and
buddy real groups that make cross-farm persistence possible.

- members of one buddy sticky group have the same key type and address rule (and, for
  http types, the same cookie or header and the same cookie mode): error otherwise;
- a sticky group that joins a buddy sticky group needs every rserver of its serverfarm
  in some buddy real group: error naming each rserver that is not;
- a buddy sticky group may not take the name of a sticky group outside it (the name is
  its scope's name, SPEC §3);
- a buddy real group with members in only one serverfarm: warning (in-farm failover only).
It never computes the effective mask or timeout (`core.compile` does).
"""

from __future__ import annotations

from buddylb.config.checks import Findings, in_context
from buddylb.config.model import Context, StickyGroup


def _rule(sg: StickyGroup) -> str:
    """How a sticky group keys its clients, in config words."""
    if sg.kind == "ip-netmask":
        return f"ip-netmask address {sg.address}"
    if sg.kind == "http-cookie":
        mode = " with cookie insert" if sg.cookie_insert else ""
        return f'http-cookie "{sg.cookie_name}"{mode}'
    if sg.kind == "http-header":
        return f'http-header "{(sg.header_name or "").lower()}"'
    return sg.kind


def check_buddy_sticky_groups(ctx: Context, f: Findings) -> None:
    groups: dict[str, list[StickyGroup]] = {}
    for sg in ctx.stickies.values():
        if sg.buddy_group is not None:
            groups.setdefault(sg.buddy_group, []).append(sg)
    for name, members in groups.items():
        first = members[0]
        namesake = ctx.stickies.get(name)
        if namesake is not None and namesake.buddy_group != name:
            f.error(
                first.buddy_group_line,
                f'buddy sticky group "{name}" has the name of sticky group "{name}" (line {namesake.line}), which '
                "is not one of its members; rename the buddy sticky group",
            )
        for sg in members[1:]:
            if _rule(sg) != _rule(first):
                f.error(
                    sg.buddy_group_line,
                    f'sticky group "{sg.name}" ({_rule(sg)}) joins buddy sticky group "{name}", whose member '
                    f'"{first.name}" (line {first.line}) keys by {_rule(first)}; members of a buddy sticky group '
                    "need the same key type and address rule, change one of them or use another buddy-group",
                )
        for sg in members:
            _check_members_have_buddies(ctx, sg, name, f)


def _check_members_have_buddies(ctx: Context, sg: StickyGroup, group: str, f: Findings) -> None:
    farm = ctx.farms.get(sg.farm.name) if sg.farm is not None else None
    if farm is None:
        return
    for fm in farm.members:
        # An undefined rserver or a member whose block had a bad line was reported already.
        if fm.buddy_group is None and fm.line not in f.incomplete and fm.name in ctx.rservers:
            f.error(
                sg.buddy_group_line,
                f'sticky group "{sg.name}" joins buddy sticky group "{group}", but rserver "{fm.name}" of its '
                f'serverfarm "{farm.name}" (line {fm.line}) is in no buddy real group; add "buddy-group G" '
                f'under that rserver line or take "{sg.name}" out of "{group}"',
            )


def check_buddy_real_groups(ctx: Context, f: Findings) -> None:
    farms: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for farm in ctx.farms.values():
        for fm in farm.members:
            if fm.buddy_group is None:
                continue
            first_line.setdefault(fm.buddy_group, fm.buddy_group_line)
            seen = farms.setdefault(fm.buddy_group, [])
            if farm.name not in seen:
                seen.append(farm.name)
    for group, in_farms in farms.items():
        if len(in_farms) == 1:
            f.warn(
                first_line[group],
                f'buddy real group "{group}" has members only in serverfarm "{in_farms[0]}"{in_context(ctx)}, '
                "so it gives in-farm failover only; put an rserver of another serverfarm in it "
                "for persistence across farms",
            )
