"""References between objects of one context (SPEC §2.3 "references to undefined
objects") and the structural rules that go with them: an rserver has an address, a
sticky group and a policy class have a serverfarm, a class-map is used where its kind
fits (http lines in http policies, virtual-address lines in multi-match policies), and
an http-only sticky type is never used by an L4 policy.

It never looks across contexts: contexts are independent balancers (SPEC §1).
"""

from __future__ import annotations

from buddylb.config.checks import Findings, in_context
from buddylb.config.model import ClassMap, Context, LbClass, LbPolicy, Ref

_HTTP_ONLY = ("http-cookie", "http-header")


def _undefined(f: Findings, ctx: Context, ref: Ref, owner: str, kind: str, define: str) -> None:
    f.error(
        ref.line,
        f'{owner} references {kind} "{ref.name}", which is not defined{in_context(ctx)}; '
        f'define "{define} {ref.name}" or fix the name',
    )


def check_rservers(ctx: Context, f: Findings) -> None:
    for rs in ctx.rservers.values():
        if rs.address is None:
            f.missing(
                rs.line, rs.line, f'rserver host "{rs.name}" has no address; add "ip address A" under it'
            )
        for ref in rs.probes:
            if ref.name not in ctx.probes:
                _undefined(f, ctx, ref, f'rserver host "{rs.name}"', "probe", "probe tcp")


def check_farms(ctx: Context, f: Findings) -> None:
    for farm in ctx.farms.values():
        owner = f'serverfarm "{farm.name}"'
        for fm in farm.members:
            if fm.name not in ctx.rservers:
                _undefined(f, ctx, Ref(fm.name, fm.line), owner, "rserver", "rserver host")
        for ref in farm.probes:
            if ref.name not in ctx.probes:
                _undefined(f, ctx, ref, owner, "probe", "probe tcp")


def check_stickies(ctx: Context, f: Findings) -> None:
    for sg in ctx.stickies.values():
        owner = f'sticky group "{sg.name}"'
        if sg.farm is None:
            f.missing(sg.line, sg.line, f'{owner} has no serverfarm; add "serverfarm F" under it')
        for ref in (sg.farm, sg.backup_farm):
            if ref is not None and ref.name not in ctx.farms:
                _undefined(f, ctx, ref, owner, "serverfarm", "serverfarm host")


def check_lb_policies(ctx: Context, f: Findings) -> None:
    for pol in ctx.lb_policies.values():
        if not pol.classes:
            f.missing(
                pol.line,
                pol.line,
                f'policy-map "{pol.name}" has no class; add "class class-default" with a serverfarm',
            )
        for cls in pol.classes:
            _check_lb_class(ctx, pol, cls, f)


def _check_lb_class(ctx: Context, pol: LbPolicy, cls: LbClass, f: Findings) -> None:
    owner = f'class "{cls.name}" of policy-map "{pol.name}"'
    if cls.name != "class-default":
        cm = ctx.class_maps.get(cls.name)
        if cm is None:
            _undefined(f, ctx, Ref(cls.name, cls.line), f'policy-map "{pol.name}"', "class-map", "class-map")
        else:
            _check_lb_class_map(pol, cls, cm, f)
    if cls.farm is None and cls.sticky is None:
        f.missing(
            cls.line, cls.line, f'{owner} has no action; add "serverfarm F" or "sticky-serverfarm S" under it'
        )
    for ref in (cls.farm, cls.backup_farm):
        if ref is not None and ref.name not in ctx.farms:
            _undefined(f, ctx, ref, owner, "serverfarm", "serverfarm host")
    if cls.sticky is None:
        return
    sg = ctx.stickies.get(cls.sticky.name)
    if sg is None:
        _undefined(f, ctx, cls.sticky, owner, "sticky group", "sticky ip-netmask MASK address source")
    elif sg.kind in _HTTP_ONLY and not pol.http:
        # SPEC §2.3: an http-only sticky type on an L4 policy.
        f.error(
            cls.sticky.line,
            f'{owner} uses sticky group "{sg.name}" of type {sg.kind}, which needs HTTP, but the policy is '
            f'generic (L4); write "policy-map type loadbalance [http] first-match {pol.name}" or use a '
            "sticky ip-netmask group",
        )
    elif sg.kind == "ssl-session" and pol.http:
        # SPEC §5: ssl-session stickiness reads TLS passthrough (L4) traffic.
        f.error(
            cls.sticky.line,
            f'{owner} uses sticky group "{sg.name}" of type ssl-session, which reads TLS passed through an L4 '
            f'policy, but policy-map "{pol.name}" is http; use an http-cookie or ip-netmask sticky group',
        )


def _check_lb_class_map(pol: LbPolicy, cls: LbClass, cm: ClassMap, f: Findings) -> None:
    if not cm.http and not any(m.kind == "virtual-address" for m in cm.matches):
        f.error(
            cls.line,
            f'class-map "{cm.name}" (line {cm.line}) matches client addresses; buddylb picks a load-balance class by '
            f'HTTP content or class-default only: move its source-address lines into the VIP\'s match-all class-map '
            "or use an access-list",
        )
    elif not cm.http:
        f.error(
            cls.line,
            f'class-map "{cm.name}" (line {cm.line}) matches virtual addresses, which only a multi-match '
            f'policy-map uses; in policy-map "{pol.name}" use a "class-map type http loadbalance" or class-default',
        )
    elif not pol.http:
        f.error(
            cls.line,
            f'class-map "{cm.name}" matches http requests, but policy-map "{pol.name}" is generic (L4); '
            f'write "policy-map type loadbalance [http] first-match {pol.name}" or use class class-default',
        )


def check_mm_policies(ctx: Context, f: Findings) -> None:
    for pol in ctx.mm_policies.values():
        for cls in pol.classes:
            owner = f'class "{cls.name}" of policy-map multi-match "{pol.name}"'
            cm = ctx.class_maps.get(cls.name)
            if cm is None:
                _undefined(
                    f, ctx, Ref(cls.name, cls.line), f'policy-map "{pol.name}"', "class-map", "class-map"
                )
            elif cm.http:
                f.error(
                    cls.line,
                    f'{owner} names class-map "{cm.name}", which matches http requests; a VIP class needs a '
                    'class-map with "match virtual-address" lines',
                )
            if cls.lb_policy is None:
                f.missing(
                    cls.line,
                    cls.line,
                    f'{owner} has no load-balance policy; add "loadbalance policy P" under it',
                )
            elif cls.lb_policy.name in ctx.mm_policies:
                f.error(
                    cls.lb_policy.line,
                    f'{owner} names "{cls.lb_policy.name}" as its loadbalance policy, but it is a multi-match '
                    "policy-map; name a policy-map type loadbalance",
                )
            elif cls.lb_policy.name not in ctx.lb_policies:
                _undefined(
                    f, ctx, cls.lb_policy, owner, "policy-map", "policy-map type loadbalance first-match"
                )
            if cls.ssl_proxy is not None and cls.ssl_proxy.name not in ctx.ssl_proxies:
                _undefined(f, ctx, cls.ssl_proxy, owner, "ssl-proxy service", "ssl-proxy service")
            _check_terminated_ssl_session(ctx, owner, cls.ssl_proxy, cls.lb_policy, f)


def _check_terminated_ssl_session(
    ctx: Context, owner: str, proxy: Ref | None, policy: Ref | None, f: Findings
) -> None:
    """ssl-session stickiness needs the TLS of the client to pass through (SPEC §5)."""
    pol = ctx.lb_policies.get(policy.name) if policy is not None else None
    if proxy is None or pol is None:
        return
    for cls in pol.classes:
        sg = ctx.stickies.get(cls.sticky.name) if cls.sticky is not None else None
        if sg is not None and sg.kind == "ssl-session":
            f.error(
                proxy.line,
                f'{owner} terminates TLS (ssl-proxy server "{proxy.name}"), but its policy-map "{pol.name}" uses '
                f'ssl-session sticky group "{sg.name}", which needs TLS passed through; remove the ssl-proxy '
                "line or use another sticky type",
            )


def check_service_policies(ctx: Context, f: Findings) -> None:
    for ref in ctx.active_policies():
        if ref.name in ctx.mm_policies or ref.name in ctx.management_policies:
            continue  # a management policy-map is a device command, ignored with them
        if ref.name in ctx.lb_policies:
            f.error(
                ref.line,
                f'service-policy input names "{ref.name}", a load-balance policy-map; it activates a '
                '"policy-map multi-match", name one of those',
            )
        else:
            _undefined(f, ctx, ref, "service-policy input", "policy-map", "policy-map multi-match")
