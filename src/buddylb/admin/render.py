"""ACE-like aligned text tables for the show commands (SPEC §4).

Input is exactly what `admin.views` returns (the JSON of `--json`), so the text and JSON
outputs can never disagree.  Plain ASCII, deterministic (golden-text tests pin it).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, v in enumerate(r):
            widths[i] = max(widths[i], len(v))
    line = lambda vals: "  ".join(v.ljust(widths[i]) for i, v in enumerate(vals)).rstrip()  # noqa: E731
    out = [title] if title else []
    out.append(line(headers))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out) + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ",".join(f"{k}={_cell(x)}" for k, x in v.items()) or "-"
    if isinstance(v, (list, tuple)):
        return ",".join(_cell(x) for x in v) or "-"
    return str(v)


def render_sticky_database(rows: list[dict]) -> str:
    return table(
        ["context", "scope", "type", "key", "last farm", "last rserver", "rserver per farm", "expires(s)", "conns", "flags"],
        [[r["context"], r["scope"], r["type"], r["key"], r["last_serverfarm"], r["last_rserver"], r["serverfarms"],
          "active" if r["expires_in_s"] is None else r["expires_in_s"], r["open_connections"], r["flags"]]
         for r in rows],
        title=f"sticky database: {len(rows)} entries",
    )


def render_sticky_client(scopes: list[dict]) -> str:
    parts = []
    for s in scopes:
        e = s["entry"]
        kind = "" if s.get("type", "ip-netmask") == "ip-netmask" else f" ({s['type']})"
        head = f"context {s['context']}  scope {s['scope']}{' (buddy)' if s['buddy'] else ''}{kind}  key {s['key']}\n"
        if e is None:
            head += "  entry: none (a new client here)\n"
        else:
            head += (f"  entry: last {e['last_serverfarm']}/{e['last_rserver']}  per farm {_cell(e['serverfarms'])}"
                     f"  expires(s) {_cell(e['expires_in_s']) if e['expires_in_s'] is not None else 'active'}"
                     f"  conns {e['open_connections']}\n")
        rows = [[f["serverfarm"], _would_get(f), f["outcome"], f["rule"]] for f in s["serverfarms"]]
        parts.append(head + _indent(table(["serverfarm", "would get", "outcome", RULE], rows)))
    return "\n".join(parts) if parts else "no sticky scope keys this client\n"


RULE = "rule (README: How buddy resolution decides)"


def _would_get(f: dict) -> str:
    """The explain view's answer: the rserver (and the backup farm serving it), or why none."""
    if f["outcome"] == "no_server":
        return "queue (connection limits)" if f.get("queue") else "none (503 / close)"
    where = f" in backup {f['served_by']}" if f.get("backup") else ""
    if f["rserver"]:
        return f["rserver"] + where
    among = f"{f['predictor']} of {_cell(f['candidates'])}"
    return f"{f['next_rserver']}{where} ({among})" if f.get("next_rserver") else among + where


def _indent(text: str) -> str:
    return "".join("  " + ln + "\n" for ln in text.splitlines())


def render_serverfarm(farms: list[dict], detail: bool = False) -> str:
    parts = []
    for f in farms:
        proxy = f"  send-proxy {f['send_proxy']}" if f.get("send_proxy") else ""
        head = (f"serverfarm {f['serverfarm']} (context {f['context']})  predictor {f['predictor']}  "
                f"probes {_cell(f['probes'])}{proxy}\n")
        cols = ["rserver", "address", "port", "weight", "state", "buddy group", "conns"]
        rows = [[m["rserver"], m["address"], m["port"], m["weight"], m["state"], m["buddy_group"], m["connections"]]
                for m in f["rservers"]]
        if detail:
            cols += ["backup", "conn-limit"]
            for row, m in zip(rows, f["rservers"]):
                row += [m["backup"], m["conn_limit"]]
        parts.append(head + _indent(table(cols, rows)))
    return "\n".join(parts)


def render_rserver(rows: list[dict], detail: bool = False) -> str:
    """Admin state (configuration and operator) and operational state side by side; the
    weight is each farm's own (`farm:weight`), the host's only in the detail header."""
    if not detail:
        return table(["context", "rserver", "address", "admin", "state", "conns", "serverfarm:weight"],
                     [[r["context"], r["rserver"], r["address"], r["admin_state"], r["state"], r["connections"],
                       [f"{f['serverfarm']}:{f['weight']}" for f in r["serverfarms"]]] for r in rows])
    parts = []
    for r in rows:
        head = (f"rserver {r['rserver']} (context {r['context']})  {r['address']}  host weight {r['host_weight']}  "
                f"admin {r['admin_state']}  state {r['state']}  conns {r['connections']}\n")
        parts.append(head + _indent(table(["serverfarm", "port", "weight", "buddy group", "state", "conns"],
                                          [[f["serverfarm"], f["port"], f["weight"], f["buddy_group"], f["state"],
                                            f["connections"]] for f in r["serverfarms"]])))
    return "\n".join(parts)


def render_impact(data: dict) -> str:
    """The drain preview: per farm, the clients that name the rserver and where they go."""
    rows = [[r["context"], r["serverfarm"], r["scope"], r["entries"], r["stay"], r["follow_buddy"], r["restick"],
             r["keep"], r["no_server"], ",".join(f"{rs}={n:g}" for rs, n in r["to"].items()) or "-",
             ",".join(f"{rs}={n:.0%}" for rs, n in r["new_clients"].items()) or "none", r["connections"]]
            for r in data["serverfarms"]]
    t = data["totals"]
    drain = data["action"] == "drain"
    stay = f"{t['stay']} stay on it; by rule {t['keep']} keep their server, " if drain else ""  # out of service: none
    title = (f"impact of rserver {data['rserver']} {'draining' if drain else 'out of service'}: "
             f"{t['entries']} entries name it; {stay}{t['follow_buddy']} follow a buddy, {t['restick']} re-stick, "
             f"{t['no_server']} have no server; {t['connections']} open connections finish where they are")
    return table(["context", "serverfarm", "scope", "entries", "stay", "follow buddy", "restick", "keep", "no server",
                  "to (by rule; predictor by weight)", "new clients", "conns"], rows, title=title)


def render_stats_sticky(rows: list[dict]) -> str:
    keys = ["entries", "capacity", "hits", "misses", "buddy_hits", "resticks", "evictions", "expirations",
            "unstored", "no_server", "buddy_sticky_groups", "buddy_connections"]
    parts = []
    for r in rows:
        store = r.get("store", {})
        lines = [f"sticky statistics, context {r['context']} (store {store.get('kind', 'memory')}"
                 f"{', DEGRADED' if store.get('degraded') else ''})"]
        lines += [f"  {k.replace('_', ' '):<22} {r[k]}" for k in keys]
        if store.get("url"):  # a shared store: what Redis holds and what the node did for it
            ae = store.get("anti_entropy") or {}
            lines += [f"  {'store':<22} {store['url']} prefix {store.get('prefix')}",
                      f"  {'store keys':<22} {_cell(store.get('keys'))} (used memory {_cell(store.get('used_memory'))})",
                      f"  {'store errors':<22} {store.get('errors', 0)} (last: {_cell(store.get('last_error'))})",
                      f"  {'read repairs':<22} {store.get('repairs', 0)}",
                      f"  {'write-back passes':<22} {ae.get('passes', 0)} ({ae.get('written', 0)} written, "
                      f"{ae.get('kept', 0)} kept; last: {_cell(ae.get('last_reason'))})",
                      f"  {'cluster nodes':<22} {store.get('cluster_nodes', 0)}"]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def render_buddy_group(data: dict, detail: bool = False) -> str:
    real = table(["context", "buddy real group", "serverfarm: rservers"],
                 [[g["context"], g["name"] + (" (one farm)" if g["single_farm"] else ""),
                   "; ".join(f"{f}: {','.join(r)}" for f, r in g["serverfarms"].items())]
                  for g in data["buddy_real_groups"]])
    cols = ["context", "buddy sticky group", "type", "sticky groups", "serverfarms", "effective mask", "effective timeout(s)"]
    rows = [[s["context"], s["name"], s["kind"], s["sticky_groups"], s["farms"], s["effective_mask"], s["effective_timeout_s"]]
            for s in data["buddy_sticky_groups"]]
    if detail:
        cols += ["v6 prefix", "activeconns"]
        for row, s in zip(rows, data["buddy_sticky_groups"]):
            row += [s["effective_v6_prefix"], s["activeconns"]]
    return real + "\n" + table(cols, rows)


def render_probe(rows: list[dict], detail: bool = False) -> str:
    """`show probe [NAME] [detail]`: one row per target; with detail, its last results."""
    out = table(["probe", "serverfarm", "rserver", "address", "port", "state", "last result", "ms", "fails",
                 "checks", "recent (oldest first)"],
                [[r["probe"], r["serverfarm"], r["rserver"], r["address"], r["port"], r["state"], r["last_result"],
                  r["latency_ms"], r["consecutive_failures"], r["checks"],
                  "".join(_TICK.get(h["result"], "?") for h in r["history"]) or "-"] for r in rows])
    if not detail:
        return out
    for r in rows:
        out += f"\nprobe {r['probe']} rserver {r['rserver']} in serverfarm {r['serverfarm']} (context {r['context']})\n"
        out += table(["time (UTC, newest first)", "result", "ms", "detail"],
                     [[time.strftime("%H:%M:%S", time.gmtime(h["ts"])) + f".{int(h['ts'] * 1000) % 1000:03d}",
                       h["result"], h["latency_ms"], h["detail"]] for h in reversed(r["history"])])
    return out


_TICK = {"success": "+", "failure": "X", "not run": "."}


def render_cluster(doc: dict) -> str:
    """`show cluster`: one row per node sharing the sticky store (* = this node), then warnings."""
    rows = [[("*" if n.get("self") else "") + str(n.get("id")), n.get("address"), n.get("version"),
             n.get("config_checksum"), n.get("generation"), n.get("entries"), n.get("decisions_per_s"),
             n.get("age_s")] for n in doc["nodes"]]
    out = table(["node", "address", "version", "config checksum", "generation", "entries", "decisions/s",
                 "age (s)"], rows, title=f"cluster: {len(rows)} node(s) sharing the sticky store")
    return out + "".join(f"WARNING: {w}\n" for w in doc["warnings"])


def render_access_list(data: dict) -> str:
    rows = [[a["context"], a["name"], ln["line"], ln["text"], ln["hits"]]
            for a in data["access_lists"] for ln in a["lines"]]
    vips = [[v["context"], v["vip"], ",".join(v["access_lists"]), v["denied"], v["implicit_deny"]] for v in data["vips"]]
    return (table(["context", "access-list", "line", "rule", "hits"], rows) + "\n"
            + table(["context", "VIP", "access-groups", "denied", "implicit deny"], vips))


RENDERERS: dict[str, Callable[..., str]] = {
    "sticky-database": render_sticky_database,
    "sticky-client": render_sticky_client,
    "serverfarm": render_serverfarm,
    "rserver": render_rserver,
    "stats-sticky": render_stats_sticky,
    "buddy-group": render_buddy_group,
    "probe": render_probe,
    "cluster": render_cluster,
    "access-list": render_access_list,
    "impact": render_impact,
}
