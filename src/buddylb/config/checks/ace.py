"""Rules for what ACE files carry beyond buddylb's own objects (SPEC §2.3, §2.4): every
`access-group input` names a defined access-list, and `replicate sticky` without a
`sticky-store` says that the table stays local (one warning for the file).

It never changes the model; the ACL semantics (first match, implicit deny) live in
`core.acl`.
"""

from __future__ import annotations

from buddylb.config.checks import Findings, in_context
from buddylb.config.model import Config, Context


def check_access_groups(ctx: Context, f: Findings) -> None:
    refs = [(r, "access-group input") for r in ctx.access_groups]
    refs += [(r, f"interface {itf.name}: access-group input") for itf in ctx.interfaces for r in itf.access_groups]
    for ref, owner in refs:
        acl = ctx.access_lists.get(ref.name)
        if acl is None:
            f.error(
                ref.line,
                f'{owner} references access-list "{ref.name}", which is not defined{in_context(ctx)}; '
                f'add "access-list {ref.name} line 8 extended permit ip any any" (or your rules) or fix the name',
            )
        elif not acl.entries:
            f.error(
                ref.line,
                f'{owner} references access-list "{ref.name}", which has no permit or deny line (it would '
                "refuse every connection); add its extended lines or remove the access-group",
            )


def check_ssl_parameter_maps(ctx: Context, f: Findings) -> None:
    """`ssl advanced-options NAME` names a `parameter-map type ssl` of the context."""
    for sp in ctx.ssl_proxies.values():
        ref = sp.params
        if ref is None:
            continue
        pm = ctx.parameter_maps.get(ref.name)
        if pm is None or pm.kind != "ssl":
            what = "is not defined" if pm is None else f"is a parameter-map type {pm.kind}"
            f.error(ref.line, f'ssl-proxy service "{sp.name}" references parameter-map "{ref.name}", which {what}'
                    f'{in_context(ctx)}; define "parameter-map type ssl {ref.name}" or fix the name')


def check_static_cookies(ctx: Context, f: Findings) -> None:
    """`static cookie-value V rserver R [PORT]` names a member of the group's farms."""
    for sg in ctx.stickies.values():
        farms = [ctx.farms.get(r.name) for r in (sg.farm, sg.backup_farm) if r is not None]
        for st in sg.statics:
            if not any(m.name == st.rserver and (st.port is None or m.port == st.port)
                       for farm in farms if farm is not None for m in farm.members):
                where = f" on port {st.port}" if st.port is not None else ""
                f.error(st.line, f'static cookie-value "{st.value}" of sticky group "{sg.name}" names rserver '
                        f'"{st.rserver}"{where}, which is not in its serverfarm; name a member of the farm')


def check_replicate(config: Config, f: Findings) -> None:
    if config.sticky_store is not None:
        return
    lines = sorted(sg.replicate_line for ctx in config.contexts.values() for sg in ctx.stickies.values() if sg.replicate)
    if lines:
        more = f" (and {len(lines) - 1} more sticky group{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
        f.warn(
            lines[0],
            f'"replicate sticky" without a sticky-store: the sticky table stays in this buddylb{more}; add '
            '"sticky-store redis://HOST:PORT/DB" at the top to share it with the other nodes, as ACE replicated to its peer',
            "mapping",
        )
