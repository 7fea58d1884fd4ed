"""BENCHMARKS.md from the results of `bench.run`: markdown only, no measuring.

Owns the layout: machine and versions, the proxy summary, one table per scenario
(buddylb, HAProxy, ratio), the stickiness check, the engine table (ratios to the
floor, targets), memory per entry, where the time goes, and what buddylb printed on
stderr.  Every section missing from the results is left out; every figure says which
run measured it when it comes from an earlier run than the header's.
"""
from __future__ import annotations

from typing import Any, Iterable

from bench.proxy import BALANCER_CORE, DIRECT, LOAD_CORE, SCENARIOS

NA = "–"


def _n(x: float | None, digits: int = 0) -> str:
    if x is None:
        return NA
    return f"{x:,.{digits}f}"


def _ms(x: float | None) -> str:
    if x is None:
        return NA
    return f"{x:.3f} ms" if x < 1 else f"{x:.2f} ms" if x < 100 else f"{x:,.0f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return NA
    return f"{a / b:.2f}×"


def _table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _throughput(r: dict[str, Any] | None, unit: str) -> float | None:
    if not r:
        return None
    return r.get("mib_per_s") if unit == "MiB/s" else r.get("requests_per_s")


def _core(r: dict[str, Any] | None, core: int) -> str:
    value = ((r or {}).get("core_busy_pct") or {}).get(f"cpu{core}")
    return _n(value)


def _errors(r: dict[str, Any] | None) -> str:
    if not r:
        return NA
    errs = r.get("errors") or {}
    return ", ".join(f"{k} {v:,}" for k, v in errs.items()) or "0"


def _measured(sec: dict[str, Any], meta: dict[str, Any]) -> str:
    m = sec.get("measured") or {}
    if m.get("date") == meta["machine"]["date"]:
        return ""
    return f" *(measured {m.get('date', '?')}, {m.get('mode', '?')} run)*"


# -- sections -----------------------------------------------------------------------------
def _header(res: dict[str, Any]) -> list[str]:
    meta = res["meta"]
    m, v = meta["machine"], meta.get("versions", {})
    only = f", only: {', '.join(meta['only'])}" if meta.get("only") else ""
    lines = [
        "# buddylb benchmarks", "",
        f"Written by `make bench` (`python -m bench.run{' --quick' if meta['mode'] == 'quick' else ''}`) on "
        f"{m['date']}: {meta['mode']} run{only}, wall time {meta.get('wall_s', 0) / 60:.1f} min. "
        "Raw figures: `bench-out/results.json`; configurations, profiles and balancer stderr: `bench-out/`.", "",
        "No figure here is a pass/fail gate; the targets are the engine issue's.", "",
        "## Machine", "",
    ]
    rows = [["CPU", str(m["cpu"])], ["cores", str(m["cores"])], ["memory", f"{m.get('memory_gib', '?')} GiB"],
            ["kernel", str(m["kernel"])], ["Python", str(v.get("python", m["python"]))],
            ["uvloop", v.get("uvloop", "?")], ["OpenSSL (Python)", v.get("openssl (python)", "?")],
            ["HAProxy", v.get("haproxy", "?")], ["nginx", v.get("nginx", "?")], ["wrk", v.get("wrk", "?")],
            ["load average (1 min) at start", f"{m.get('loadavg_1m', '?')} (other work shares this machine)"]]
    return lines + _table(["", ""], rows)


def _proxy(res: dict[str, Any]) -> list[str]:
    secs, meta = res["sections"], res["meta"]
    names = [n for n in SCENARIOS if f"scenario:{n}" in secs]
    directs = [n for n in DIRECT if f"direct:{n}" in secs]
    if not names and not directs:
        if "proxy-skipped" in secs:
            return ["## Proxy scenarios", "", f"Skipped: missing {', '.join(secs['proxy-skipped']['missing'])}.", ""]
        return []
    lines = _proxy_intro(secs.get("proxy-settings", {}))
    rows = []
    for n in names:
        sc, pair = SCENARIOS[n], secs[f"scenario:{n}"]
        b, h = pair.get("buddylb"), pair.get("haproxy")
        d = secs.get(f"direct:{sc.direct}") if sc.direct else None
        rows.append([sc.title, sc.unit, _n(_throughput(b, sc.unit)), _n(_throughput(h, sc.unit)),
                     _ratio(_throughput(b, sc.unit), _throughput(h, sc.unit)),
                     _n(_throughput(d, sc.unit)) if d else NA])
    lines += ["### Summary", ""]
    lines += _table(["scenario", "unit", "buddylb", "HAProxy", "buddylb / HAProxy", "direct to nginx"], rows)
    for n in names:
        lines += _scenario(n, secs, meta)
    return lines + _direct([secs[f"direct:{n}"] | {"name": n} for n in directs]) + _balancers(secs)


def _proxy_intro(st: dict[str, Any]) -> list[str]:
    return ["## Proxy scenarios", "",
            f"- Same run, same nginx backends (lnx1 127.0.1.11, lnx2 127.0.1.12; nginx `worker_processes 1`), "
            f"same wrk settings: `wrk -t{st.get('threads', 1)} -c{st.get('connections', 50)} "
            f"-d{st.get('seconds', '?')}s --latency` after a {st.get('warmup_s', 1)} s warm-up; "
            "`-H \"Connection: close\"` for a new connection (or TLS handshake) per request.",
            f"- The balancer runs pinned with `{st.get('balancer_pin', '?')}`; wrk and the backends with "
            f"`{st.get('load_pin', '?')}`. CPU is utime+stime from /proc over the run, in % of one core. "
            f"\"core busy\" counts every process on that core (/proc/stat): when it is well above the "
            "balancer's own CPU, other work on the machine took the core and the figures are low by that much.",
            "- Equivalent configurations (`bench/configs.py`, copies in `bench-out/`): the seed's two VIPs "
            "(HTTP, and HTTPS terminated at the balancer), source-address persistence shared across the two "
            "farms — buddylb with the SPEC §2 example (buddy sticky group alpha, lnx1 blue / lnx2 red), "
            "HAProxy with `stick-table type ip size 1m expire 30m` + `stick on src` in backend http and "
            "`stick on src table http` in backend decrypted, same server ids. L7 scenarios use "
            "`policy-map type loadbalance http` / `mode http`; L4 scenarios plain policies / `mode tcp`.",
            "- wrk connects from 127.0.0.1 only: it is one client, so each balancer holds one sticky entry and "
            "every request after the first takes the sticky hit path (the engine section covers many clients).",
            "- Both balancers run with their defaults otherwise (HAProxy: 16 KiB buffers, no splicing; buddylb: "
            "one uvloop process, access log off). A run on a machine shared with other work moves by ±30 %: "
            "compare ratios within one run, not figures across runs.",
            ""]


def _direct(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    lines = ["### Direct to backend (the ceiling)", ""]
    return lines + _table(["run", "req/s", "MiB/s", "p50", "p99", "nginx CPU", "errors"], [
        [r.get("title", r["name"]), _n(r.get("requests_per_s")), _n(r.get("mib_per_s"), 1), _ms(r.get("p50_ms")),
         _ms(r.get("p99_ms")), f"{_n(r.get('backend_cpu_pct'))} %", _errors(r)] for r in runs])


def _scenario(name: str, secs: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    sc, pair = SCENARIOS[name], secs[f"scenario:{name}"]
    b, h = pair.get("buddylb") or {}, pair.get("haproxy") or {}
    lines = [f"### {sc.title} (`{name}`){_measured(pair, meta)}", ""]
    rows = [[sc.unit, _n(_throughput(b, sc.unit), 1 if sc.unit == "MiB/s" else 0),
             _n(_throughput(h, sc.unit), 1 if sc.unit == "MiB/s" else 0),
             _ratio(_throughput(b, sc.unit), _throughput(h, sc.unit))]]
    if sc.unit == "MiB/s":
        rows.append(["req/s", _n(b.get("requests_per_s")), _n(h.get("requests_per_s")),
                     _ratio(b.get("requests_per_s"), h.get("requests_per_s"))])
    rows += [["p50 latency", _ms(b.get("p50_ms")), _ms(h.get("p50_ms")), _ratio(b.get("p50_ms"), h.get("p50_ms"))],
             ["p99 latency", _ms(b.get("p99_ms")), _ms(h.get("p99_ms")), _ratio(b.get("p99_ms"), h.get("p99_ms"))],
             ["balancer CPU (% of one core)", _n(b.get("balancer_cpu_pct")), _n(h.get("balancer_cpu_pct")),
              _ratio(b.get("balancer_cpu_pct"), h.get("balancer_cpu_pct"))],
             ["backend nginx CPU (%)", _n(b.get("backend_cpu_pct")), _n(h.get("backend_cpu_pct")), ""],
             [f"core {BALANCER_CORE} busy, every process (%)", _core(b, BALANCER_CORE), _core(h, BALANCER_CORE), ""],
             [f"core {LOAD_CORE} busy (wrk + nginx + others, %)", _core(b, LOAD_CORE), _core(h, LOAD_CORE), ""],
             ["requests completed", _n(b.get("requests")), _n(h.get("requests")), ""],
             ["errors (wrk)", _errors(b), _errors(h), ""]]
    if b and b.get("alive_after") is False:
        rows.append(["balancer alive after the run", "**no**", "yes" if h.get("alive_after", True) else "no", ""])
    return lines + _table(["", "buddylb", "HAProxy", "buddylb / HAProxy"], rows)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit] + "…"


def _balancers(secs: dict[str, Any]) -> list[str]:
    keys = [k for k in secs if k.startswith("balancer:")]
    if not keys:
        return []
    lines = ["### Stickiness check and exit status", "",
             "Asked after each balancer's scenarios: buddylb `GET /show/stats-sticky` on its admin API, HAProxy "
             "`show table http` on its stats socket.", ""]
    rows = []
    for k in keys:
        r = secs[k]
        sticky = r.get("sticky") or {}
        detail = sticky.get("detail") or {}
        det = detail.get("table") if "table" in detail else ", ".join(f"{a} {b:,}" for a, b in detail.items())
        rows.append([k.split(":", 1)[1], _n(sticky.get("entries")) if sticky else NA, det or NA,
                     str(r.get("backend_seen", NA)), str(r.get("returncode")), _one_line(r.get("error") or "")])
    lines += _table(["balancer", "sticky entries", "detail", "first response (status, backend)", "exit code",
                     "failure"], rows)
    return lines


def _engine(res: dict[str, Any]) -> list[str]:
    secs, meta = res["sections"], res["meta"]
    lines: list[str] = []
    eng = secs.get("engine")
    if eng:
        fl = eng["floor"]
        lines += ["## Engine (sans-IO, one process, no sockets)" + _measured(eng, meta), "",
                  f"Decisions per second through the public `buddylb.core.decide.decide()` with "
                  f"{eng['clients']:,} distinct client addresses (made before the clock starts), the ONE_TO_ONE "
                  "configuration of tests/core/configs.py with `sticky-table max-entries 4194304`, GC on. "
                  "The floor is a bare dict lookup plus one attribute update over the same keys in the same "
                  f"random order as the hit pass (median of {fl['outcomes'].get('passes', '?')} passes, taken "
                  "before, between and after the decide() passes, so it sees the same machine).", ""]
        rows = [["floor: dict lookup + attribute update", _n(fl["rate"]), "1.00×", "", "", ""]]
        titles = {"insert": "insert / miss path (every client new)", "hit": "hit path (entry resident)",
                  "buddy": "buddy path (client alternates farms http / decrypted)"}
        for k in ("insert", "hit", "buddy"):
            p = eng["paths"][k]
            meets = "yes" if p["ratio"] >= p["target"] else "**no**"
            outcomes = ", ".join(f"{o} {c:,}" for o, c in p["outcomes"].items())
            rows.append([titles[k], _n(p["rate"]), f"{p['ratio']:.3f}×", f"≥ {p['target']}×", meets, outcomes])
        lines += _table(["path", "per second", "÷ floor", "target", "meets", "outcomes (counter deltas)"], rows)
        ci = eng.get("addr_int_cache")
        if not ci:
            lines += ["`keys.addr_int` has no lru_cache in the version measured: every source address is parsed "
                      "(`inet_aton`) on every decision.", ""]
        else:
            rate = ci["hits"] / max(1, ci["hits"] + ci["misses"])
            lines += [f"`keys.addr_int` lru_cache (maxsize {ci['maxsize']:,}) after the run: {ci['hits']:,} hits, "
                      f"{ci['misses']:,} misses ({rate:.0%} hits): with more distinct clients than the cache holds, "
                      "every new source address is parsed again.", ""]
    lines += _memory(secs.get("memory"), meta)
    return lines


def _memory(mem: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    if not mem:
        return []
    target = mem.get("targets", {}).get("bytes_per_entry", 150)
    lines = ["### Memory per sticky entry" + _measured(mem, meta), "",
             "Measured in a fresh process: growth of the resident set (RSS) — or of Python's allocations "
             "(tracemalloc) — while one table grows through `decide()` (every client new), divided by the "
             "entries. Counts the entry, its int key, its float timestamp and the OrderedDict slot; not the "
             "client address strings.", ""]
    rows = []
    for method in ("rss", "tracemalloc"):
        for cp in (mem.get(method) or {}).get("checkpoints", []):
            holds = "yes" if cp["entries"] == cp["clients"] and not cp["unstored"] and not cp["evictions"] else "**no**"
            rows.append([method, _n(cp["clients"]), _n(cp["entries"]), f"{cp['bytes'] / 2**20:,.0f} MiB",
                         _n(cp["bytes_per_entry"]), f"≤ {target}",
                         "yes" if cp["bytes_per_entry"] <= target else "**no**", holds,
                         f"{_n(cp['rss_total'] / 2**20)} MiB" if method == "rss" else NA,
                         _n(cp.get("insert_rate")) if method == "rss" else NA])
    return lines + _table(["method", "clients", "entries", "growth", "bytes/entry", "target", "meets",
                           "all stored", "process RSS", "inserts/s (this segment)"], rows) + [
        "\"all stored\": every client got an entry (no `unstored`, no evictions) — at 4M this is the "
        "capacity check. tracemalloc slows the inserts, so its rate is not shown.", ""]


def _profiles(res: dict[str, Any]) -> list[str]:
    secs = res["sections"]
    prof, eprof = secs.get("profile"), secs.get("engine-profile")
    if not prof and not eprof:
        return []
    lines = ["## Where the time goes", ""]
    if prof:
        lines += [f"### buddylb under the L7 keep-alive load{_measured(prof, res['meta'])}", ""]
        if prof.get("error"):
            lines += [f"Profile failed: `{prof['error'][:400]}`", ""]
        elif prof.get("own"):
            lines += [f"`{prof['tool']}`, {prof['seconds']} s, {prof['samples']:,} samples while wrk drove "
                      f"{_n(prof.get('requests_per_s'))} req/s (sampling costs some throughput). "
                      f"Stacks: `bench-out/{prof['file']}`.", "", "Where the CPU is, by the leaf frame's package:", ""]
            lines += ["(A leaf in asyncio's `Runner.run` is time inside uvloop's compiled event loop: polling and "
                      "socket system calls, which a Python-level sampler does not see into.)", ""]
            lines += _table(["area", "samples", "share"],
                            [[a["area"], _n(a["samples"]), f"{a['share']:.1%}"] for a in prof["areas"][:10]])
            lines += ["Top functions by own samples:", ""]
            lines += _table(["function", "samples", "share"],
                            [[f"`{r['function']}`", _n(r["samples"]), f"{r['share']:.1%}"] for r in prof["own"]])
            lines += ["buddylb functions by inclusive samples (the function or anything it calls):", ""]
            lines += _table(["function", "samples", "share"], [[f"`{r['function']}`", _n(r["samples"]),
                                                                 f"{r['share']:.1%}"] for r in prof["inclusive_buddylb"]])
        elif prof.get("cprofile"):
            lines += [f"`{prof['tool']}`, {prof['seconds']} s under load ({_n(prof.get('requests_per_s'))} req/s "
                      f"while profiled). Stats: `bench-out/{prof['file']}`.", ""]
            lines += _cprofile_table(prof["cprofile"])
    if eprof:
        lines += [f"### decide(), hit and buddy passes (cProfile, {eprof['decisions']:,} decisions)"
                  f"{_measured(eprof, res['meta'])}", "",
                  "cProfile inflates the cost of small calls, so read this as the shape of the cost, not its size.",
                  ""]
        lines += _cprofile_table(eprof["rows"])
    return lines


def _cprofile_table(rows: list[dict[str, Any]]) -> list[str]:
    return _table(["function", "calls", "own s", "cumulative s", "own share"], [
        [f"`{r['function']}`", _n(r["calls"]), f"{r['own_s']:.2f}", f"{r['cum_s']:.2f}", f"{r['own_share']:.1%}"]
        for r in rows])


NOTABLE = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Exception", "Error")


def _stderr(res: dict[str, Any]) -> list[str]:
    out, quiet = [], []
    for k, r in res["sections"].items():
        if not k.startswith("balancer:buddylb"):
            continue
        name = k.split(":", 1)[1]
        lines = (r.get("stderr") or "").strip().splitlines()
        notable = [ln for ln in lines if any(w in ln for w in NOTABLE)]
        if not notable:
            quiet.append(f"`{name}` ({len(lines)} lines)")
            continue
        out += [f"### `{name}`: {len(notable)} notable of {len(lines)} lines (last 25 shown)", "",
                "```", "\n".join(notable[-25:]), "```", ""]
    if quiet:
        out += [f"Only start/stop INFO lines from {', '.join(quiet)}; the full text is in `bench-out/*.stderr`.", ""]
    return (["## buddylb stderr during the proxy runs", ""] + out) if out else []


def render(res: dict[str, Any]) -> str:
    lines = _header(res) + _proxy(res) + _engine(res) + _profiles(res) + _stderr(res)
    return "\n".join(lines).rstrip() + "\n"
