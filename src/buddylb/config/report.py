"""`buddylb check --ace-report`: per ACE object of the file, what buddylb does with it.

Verdicts: `used` (it serves traffic as written), `mapped` (it serves, and the row says
as what: a VIP as an L4 relay or L7 proxy and why, an access-list as a filter of which
VIPs), `ignored` (accepted, without effect, and why: a device command, an object no
active service-policy reaches) and `unsupported` (an ACE feature buddylb does not do).
Objects are reached from the active multi-match policies down (VIP -> load-balance
policy -> class-map, sticky group, farm -> rserver, probe), so "ignored: not reached"
means that the ACE would not have used it either.

It reads a validated model only; it never compiles, prints or opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from buddylb.config.model import Config, Context

_WHY_DEVICE = {
    "device": "device or context-administration command",
    "interface": "interface setting (buddylb has no VLANs)",
    "unused": "not needed by buddylb",
}


@dataclass(frozen=True, slots=True)
class Row:
    context: str
    kind: str  # rserver, serverfarm, probe, ... or the phrase of an ignored line
    name: str
    line: int
    verdict: str  # used | mapped | ignored | unsupported
    detail: str

    def as_json(self) -> dict[str, object]:
        return {
            "context": self.context,
            "kind": self.kind,
            "name": self.name,
            "line": self.line,
            "verdict": self.verdict,
            "detail": self.detail,
        }


def ace_report(config: Config) -> list[Row]:
    """One row per object and per kind of ignored line, in file order."""
    rows: list[Row] = []
    for ctx in config.contexts.values():
        rows.extend(_context_rows(ctx))
    by_kind: dict[tuple[str, str], list[int]] = {}
    notes: dict[tuple[str, str], str] = {}
    for item in config.ignored:
        key = (item.category, item.phrase)
        by_kind.setdefault(key, []).append(item.line)
        notes.setdefault(key, item.why)
    for (category, phrase), lines in by_kind.items():
        verdict = {"mapping": "mapped", "unsupported": "unsupported"}.get(category, "ignored")
        why = notes[(category, phrase)] or _WHY_DEVICE.get(category, category)
        many = f" ({len(lines)} lines)" if len(lines) > 1 else ""
        rows.append(Row("", phrase, "", lines[0], verdict, why + many))
    if config.sticky_store is None:
        for ctx in config.contexts.values():
            for sg in ctx.stickies.values():
                if sg.replicate:
                    rows.append(
                        Row(ctx.name, "replicate sticky", sg.name, sg.replicate_line, "mapped",
                            "no sticky-store: the table stays in this buddylb")
                    )
    return sorted(rows, key=lambda r: r.line)


def _context_rows(ctx: Context) -> list[Row]:
    reached = _reach(ctx)
    rows: list[Row] = []

    def add(kind: str, name: str, line: int, detail: str | None) -> None:
        if detail is None:
            rows.append(Row(ctx.name, kind, name, line, "ignored", "not reached from an active service-policy"))
        else:
            rows.append(Row(ctx.name, kind, name, line, "used" if not detail.startswith("as ") else "mapped", detail))

    for mm in ctx.mm_policies.values():
        add("policy-map multi-match", mm.name, mm.line, reached.get(("mm", mm.name)))
    for pol in ctx.lb_policies.values():
        detail = reached.get(("lb", pol.name))
        if detail is not None:
            detail = f"as an {'L7 (HTTP) proxy' if pol.http else 'L4 relay'}: {pol.reason}"
        add("policy-map type loadbalance", pol.name, pol.line, detail)
    for cm in ctx.class_maps.values():
        add("class-map", cm.name, cm.line, reached.get(("cm", cm.name)))
    for sg in ctx.stickies.values():
        add("sticky", sg.name, sg.line, reached.get(("sticky", sg.name)))
    for farm in ctx.farms.values():
        add("serverfarm host", farm.name, farm.line, reached.get(("farm", farm.name)))
    for rs in ctx.rservers.values():
        add("rserver host", rs.name, rs.line, reached.get(("rserver", rs.name)))
    for probe in ctx.probes.values():
        add(f"probe {probe.kind}", probe.name, probe.line, reached.get(("probe", probe.name)))
    for sp in ctx.ssl_proxies.values():
        add("ssl-proxy service", sp.name, sp.line, reached.get(("ssl", sp.name)))
    for pm in ctx.parameter_maps.values():
        users = [sp.name for sp in ctx.ssl_proxies.values()
                 if sp.params is not None and sp.params.name == pm.name and ("ssl", sp.name) in reached]
        if pm.kind == "ssl" and users:
            what = ", ".join(filter(None, [f"ciphers {':'.join(pm.ciphers)}" if pm.ciphers else "",
                                           f"lowest version {pm.min_version}" if pm.min_version else ""]))
            rows.append(Row(ctx.name, "parameter-map type ssl", pm.name, pm.line, "mapped",
                            f"as the TLS settings of ssl-proxy service {', '.join(users)}" + (f": {what}" if what else "")))
        elif pm.used:
            rows.append(Row(ctx.name, f"parameter-map type {pm.kind}", pm.name, pm.line, "used",
                            "what buddylb does anyway: " + ", ".join(pm.used)))
        else:
            rows.append(Row(ctx.name, f"parameter-map type {pm.kind}", pm.name, pm.line, "ignored",
                            "nothing in it changes buddylb (its lines are listed one by one)"))
    groups = {r.name for r in ctx.access_groups} | {r.name for i in ctx.interfaces for r in i.access_groups}
    for acl in ctx.access_lists.values():
        if acl.name in groups:
            rows.append(Row(ctx.name, "access-list", acl.name, acl.line, "mapped",
                            f"as a connection filter of the VIPs ({len(acl.entries)} lines, first match, implicit deny)"))
        else:
            rows.append(Row(ctx.name, "access-list", acl.name, acl.line, "ignored", "no access-group applies it"))
    for itf in ctx.interfaces:
        what = [f"service-policy input {r.name}" for r in itf.service_policies]
        what += [f"access-group input {r.name}" for r in itf.access_groups]
        detail = ("as " + ", ".join(what) + "; its other lines are ignored") if what else None
        rows.append(Row(ctx.name, "interface", itf.name, itf.line, "mapped" if what else "ignored",
                        detail or "no service-policy or access-group: buddylb has no VLANs"))
    return rows


def _reach(ctx: Context) -> dict[tuple[str, str], str]:
    """(kind, name) -> how an active VIP reaches it."""
    out: dict[tuple[str, str], str] = {}
    for ref in ctx.active_policies():
        mm = ctx.mm_policies.get(ref.name)
        if mm is None:
            continue
        out[("mm", mm.name)] = f"activated by service-policy input (line {ref.line})"
        for cls in mm.classes:
            cm = ctx.class_maps.get(cls.name)
            vips = ", ".join(f"{m.address}:{m.port_lo}" + (f"-{m.port_hi}" if m.port_hi != m.port_lo else "")
                             for m in (cm.matches if cm else []) if m.kind == "virtual-address")
            state = "in service" if cls.vip_inservice else "out of service"
            out[("cm", cls.name)] = f"VIP {vips} ({state})"
            if cls.ssl_proxy is not None:
                out[("ssl", cls.ssl_proxy.name)] = f"terminates TLS for VIP {vips}"
            pol = ctx.lb_policies.get(cls.lb_policy.name) if cls.lb_policy else None
            if pol is None:
                continue
            out[("lb", pol.name)] = f"VIP {vips}"
            for lc in pol.classes:
                if lc.name in ctx.class_maps:
                    out[("cm", lc.name)] = f"matches requests in policy-map {pol.name}"
                farms = [r.name for r in (lc.farm, lc.backup_farm) if r is not None]
                sg = ctx.stickies.get(lc.sticky.name) if lc.sticky else None
                if sg is not None:
                    out[("sticky", sg.name)] = f"{sg.kind} stickiness for VIP {vips}"
                    farms += [r.name for r in (sg.farm, sg.backup_farm) if r is not None]
                for name in farms:
                    _reach_farm(ctx, name, vips, out)
    return out


def _reach_farm(ctx: Context, name: str, vips: str, out: dict[tuple[str, str], str]) -> None:
    farm = ctx.farms.get(name)
    if farm is None:
        return
    out[("farm", name)] = f"serves VIP {vips} ({farm.predictor.kind})"
    for m in farm.members:
        out[("rserver", m.name)] = f"in serverfarm {name}"
    for ref in farm.probes:
        out[("probe", ref.name)] = f"checks the rservers of serverfarm {name}"
    for m in farm.members:
        rs = ctx.rservers.get(m.name)
        for ref in getattr(rs, "probes", []):
            out[("probe", ref.name)] = f"checks rserver {m.name} in every serverfarm"


def render(rows: list[Row]) -> str:
    """The report as an ACE-like text table (one screen for a context's objects)."""
    head = ("LINE", "VERDICT", "OBJECT", "WHAT BUDDYLB DOES")
    body = [(str(r.line), r.verdict, f"{r.kind} {r.name}".strip(), r.detail) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(3)]
    lines = []
    for row in [head, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    return "\n".join(lines)
