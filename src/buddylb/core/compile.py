"""compile_config: a validated `config.model.Config` -> an immutable `Snapshot`.

Owns every derivation the data path must not repeat per connection: effective member
weights and limits, buddy real group membership tables, buddy sticky group scopes with
their effective mask / prefix / timeout (SPEC §1), VIP -> policy, compiled regexes.
It assumes `config.validate` passed; it never reads sockets or the clock.
"""
from __future__ import annotations

import ipaddress
import itertools
import re
from pathlib import Path
from types import MappingProxyType

from buddylb.config import model as m
from buddylb.core.acl import Acl, compile_acl, vip_filter
from buddylb.core.inserts import compile_inserts
from buddylb.core.snapshot import (
    Context,
    Farm,
    HttpMatch,
    Member,
    Policy,
    PolicyClass,
    PredictorSpec,
    Scope,
    Snapshot,
    StickyGroup,
    TlsService,
    Vip,
)

_generation = itertools.count(1)
_frozen = MappingProxyType


def mask_to_prefix(mask: str | None, default: int = 32) -> int:
    if not mask:
        return default
    bits = int(ipaddress.IPv4Address(mask))
    return bin(bits).count("1")


def compile_config(config: m.Config, base_dir: Path | None = None) -> Snapshot:
    base = base_dir if base_dir is not None else Path(config.file).resolve().parent
    contexts: dict[str, Context] = {}
    vips: dict[tuple[str, int], Vip] = {}
    acls: dict[str, dict[str, Acl]] = {}
    udp_vips: dict[tuple[str, int], Vip] = {}
    for ctx in config.contexts.values():
        compiled = _compile_context(ctx)
        contexts[ctx.name] = compiled
        acls[ctx.name] = {name: compile_acl(a) for name, a in ctx.access_lists.items()}
        for vip in _compile_vips(ctx, compiled, base, acls[ctx.name]):
            (udp_vips if vip.protocol == "udp" else vips)[(vip.address, vip.port)] = vip
    return Snapshot(
        source=config.file,
        generation=next(_generation),
        contexts=_frozen(contexts),
        vips=_frozen(vips),
        timeouts=_frozen(dict(config.timeouts)),
        trusted_proxies=tuple(ipaddress.ip_network(c, strict=False) for c in config.trusted_proxies),
        config=config,
        acls=_frozen({c: _frozen(a) for c, a in acls.items()}),
        udp_vips=_frozen(udp_vips),
    )


def _compile_member(ctx: m.Context, farm: m.Serverfarm, fm: m.FarmMember, index: int) -> Member:
    host = ctx.rservers[fm.name]
    if fm.conn_max is not None:
        cmax, cmin, on_host = fm.conn_max, fm.conn_min, False
    else:
        cmax, cmin, on_host = host.conn_max, host.conn_min, host.conn_max is not None
    if cmax is not None and cmin is None:
        cmin = cmax
    weight = fm.weight if fm.weight is not None else (host.weight if host.weight is not None else m.DEFAULT_WEIGHT)
    return Member(
        context=ctx.name,
        farm=farm.name,
        rserver=fm.name,
        index=index,
        address=host.address or "",
        port=fm.port,
        weight=weight,
        conn_max=cmax,
        conn_min=cmin,
        limit_on_host=on_host,
        backup=fm.backup,
        inservice=host.inservice and fm.inservice,
        buddy_group=fm.buddy_group,
        key=(ctx.name, farm.name, fm.name),
        host_key=(ctx.name, fm.name),
        line=fm.line,
    )


def _compile_farm(ctx: m.Context, farm: m.Serverfarm) -> Farm:
    members = tuple(_compile_member(ctx, farm, fm, i) for i, fm in enumerate(farm.members))
    p = farm.predictor
    return Farm(
        context=ctx.name,
        name=farm.name,
        predictor=PredictorSpec(p.kind, p.hash_address, mask_to_prefix(p.hash_mask), p.slowstart_s),
        probes=tuple(r.name for r in farm.probes),
        fail_action_purge=farm.fail_action_purge,
        members=members,
        by_rserver=_frozen({mb.rserver: mb for mb in members}),
        primaries=tuple(mb for mb in members if not mb.backup),
        backups=tuple(mb for mb in members if mb.backup),
        key=(ctx.name, farm.name),
        inband=farm.inband,
        send_proxy=farm.send_proxy,
    )


def _scope_groups(ctx: m.Context) -> dict[str, list[m.StickyGroup]]:
    """Sticky groups by scope name: a buddy sticky group, or the sticky group alone."""
    scopes: dict[str, list[m.StickyGroup]] = {}
    for sg in ctx.stickies.values():
        scopes.setdefault(sg.buddy_group or sg.name, []).append(sg)
    return scopes


def _compile_scope(ctx_name: str, name: str, groups: list[m.StickyGroup]) -> Scope:
    first = groups[0]
    farms: list[str] = []
    for sg in groups:
        for ref in (sg.farm, sg.backup_farm):
            if ref is not None and ref.name not in farms:
                farms.append(ref.name)
    return Scope(
        context=ctx_name,
        name=name,
        is_buddy=first.buddy_group is not None,
        kind=first.kind,
        address=first.address,
        # SPEC §1: the most granular mask / prefix of the members, the shortest timeout.
        prefix4=max(mask_to_prefix(sg.netmask) for sg in groups),
        prefix6=max((sg.v6_prefix if sg.v6_prefix is not None else 128) for sg in groups),
        cookie_name=first.cookie_name,
        cookie_insert=any(sg.cookie_insert for sg in groups),
        browser_expire=any(sg.browser_expire for sg in groups),
        header_name=first.header_name.lower() if first.header_name else None,
        timeout_s=min(sg.timeout_s for sg in groups),
        activeconns=any(sg.activeconns for sg in groups),
        sticky_groups=tuple(sg.name for sg in groups),
        farms=tuple(farms),
        farm_index=_frozen({f: i for i, f in enumerate(farms)}),
    )


def _compile_policy(ctx: m.Context, pol: m.LbPolicy, farms: dict[str, Farm],
                    stickies: dict[str, StickyGroup]) -> Policy:
    classes = []
    for c in pol.classes:
        is_default = c.name == "class-default"
        cm = None if is_default else ctx.class_maps.get(c.name)
        matches = ()
        if cm is not None and cm.http:
            matches = tuple(
                HttpMatch(
                    kind=mt.kind,  # type: ignore[arg-type]
                    name=(mt.name.lower() if mt.kind == "header" and mt.name else mt.name),
                    regex=re.compile(mt.regex or ""),
                )
                for mt in sorted(cm.matches, key=lambda x: x.seq)
            )
        sg = stickies.get(c.sticky.name) if c.sticky else None
        farm_name = sg.farm if sg is not None else (c.farm.name if c.farm else None)
        backup_name = sg.backup_farm if sg is not None else (c.backup_farm.name if c.backup_farm else None)
        classes.append(
            PolicyClass(
                name=c.name,
                match_all=cm.match_all if cm is not None else True,
                matches=matches,
                farm=c.farm.name if c.farm else None,
                backup_farm=c.backup_farm.name if c.backup_farm else None,
                sticky=c.sticky.name if c.sticky else None,
                is_default=is_default or not matches,
                sticky_group=sg,
                farms=tuple(farms[f] for f in (farm_name, backup_name) if f and f in farms),
            )
        )
    inserts = {c.name: compile_inserts(c.insert_http) for c in pol.classes if c.insert_http}
    return Policy(name=pol.name, http=pol.http, classes=tuple(classes), inserts=_frozen(inserts))


def _compile_context(ctx: m.Context) -> Context:
    farms = {name: _compile_farm(ctx, f) for name, f in ctx.farms.items()}
    scopes = {name: _compile_scope(ctx.name, name, g) for name, g in _scope_groups(ctx).items()}
    stickies = {
        sg.name: StickyGroup(
            name=sg.name,
            scope=scopes[sg.buddy_group or sg.name],
            farm=sg.farm.name if sg.farm else "",
            backup_farm=sg.backup_farm.name if sg.backup_farm else None,
            timeout_s=sg.timeout_s,
            line=sg.line,
            statics=_frozen({st.value: (st.rserver, st.port) for st in sg.statics}),
        )
        for sg in ctx.stickies.values()
    }
    brg: dict[str, dict[str, list[str]]] = {}
    buddy_members: dict[tuple[str, str], list[Member]] = {}
    buddy_of: dict[tuple[str, str], str] = {}
    for farm in farms.values():
        for mb in farm.members:
            if mb.buddy_group:
                brg.setdefault(mb.buddy_group, {}).setdefault(farm.name, []).append(mb.rserver)
                buddy_members.setdefault((mb.buddy_group, farm.name), []).append(mb)
                buddy_of[(farm.name, mb.rserver)] = mb.buddy_group
    return Context(
        name=ctx.name,
        rservers=_frozen(
            {
                r.name: (r.address or "", r.weight if r.weight is not None else m.DEFAULT_WEIGHT, r.inservice)
                for r in ctx.rservers.values()
            }
        ),
        farms=_frozen(farms),
        stickies=_frozen(stickies),
        scopes=_frozen(scopes),
        buddy_real_groups=_frozen({g: _frozen({f: tuple(rs) for f, rs in fm.items()}) for g, fm in brg.items()}),
        buddy_members=_frozen({k: tuple(v) for k, v in buddy_members.items()}),
        buddy_of=_frozen(buddy_of),
        policies=_frozen({name: _compile_policy(ctx, p, farms, stickies) for name, p in ctx.lb_policies.items()}),
        probes=_frozen(dict(ctx.probes)),
        max_entries=ctx.max_entries,
    )


def _vip_ports(match: m.Match) -> range:
    if match.port_op == "eq":
        return range(match.port_lo, match.port_lo + 1)
    if match.port_op == "range":
        return range(match.port_lo, match.port_hi + 1)
    return range(0)  # `tcp any` cannot be listened on; validate reports it


def _compile_vips(ctx: m.Context, compiled: Context, base: Path, acls: dict[str, Acl]) -> list[Vip]:
    vips: list[Vip] = []
    for sp in ctx.active_policies():
        mm = ctx.mm_policies.get(sp.name)
        if mm is None:
            continue

        for cls in mm.classes:
            cm = ctx.class_maps.get(cls.name)
            if cm is None or cls.lb_policy is None:
                continue
            policy = compiled.policies[cls.lb_policy.name]
            sources = [f"{m.address}/{mask_to_prefix(m.mask)}" for m in cm.matches
                       if m.kind == "source-address" and cm.match_all and m.address]
            gate = vip_filter(ctx, acls, mm.name, sources)
            tls = None
            if cls.ssl_proxy is not None:
                sp_model = ctx.ssl_proxies[cls.ssl_proxy.name]
                params = ctx.parameter_maps.get(sp_model.params.name) if sp_model.params else None
                tls = TlsService(
                    name=sp_model.name,
                    cert=str((base / sp_model.cert).resolve()) if sp_model.cert else "",
                    key=str((base / sp_model.key).resolve()) if sp_model.key else "",
                    chain=str((base / sp_model.chain).resolve()) if sp_model.chain else None,
                    line=sp_model.line,
                    ciphers=tuple(params.ciphers) if params else (),
                    min_version=params.min_version if params else None,
                )
            for match in cm.matches:
                if match.kind != "virtual-address" or not match.address:
                    continue
                for port in _vip_ports(match):
                    vips.append(
                        Vip(
                            context=ctx.name,
                            class_name=cls.name,
                            address=str(ipaddress.ip_address(match.address)),
                            port=port,
                            policy=policy,
                            tls=tls,
                            inservice=cls.vip_inservice,
                            line=match.line,
                            acl=gate,
                            mm_policy=mm.name,
                            protocol="udp" if match.protocol == "udp" else "tcp",
                            conn_limit=None if cls.conn_max is None else
                            (cls.conn_max, cls.conn_max if cls.conn_min is None else cls.conn_min),
                            accept_proxy=tuple(ipaddress.ip_network(r.name) for r in cls.accept_proxy),
                        )
                    )
    return vips
