"""BENCHMARKS.md from the results of `bench.run`: markdown only, no measuring.

Owns the layout: machine and versions, the proxy summary, one table per scenario
(buddylb, HAProxy, the bare-relay ceiling, ratios, CPU µs per request: the aggregate of
the scenario's rounds, then each round's own figures, so the spread shows), the
stickiness check, the shared sticky store (Redis vs memory, through the proxy and in process), the engine table (ratios to the floor,
targets), memory per entry, where the time goes, and what buddylb printed on
stderr.  Every section missing from the results is left out; every figure says which
run measured it when it comes from an earlier run than the header's.  It is over 400
lines because it is one layout: each section is a short function over the same results.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from bench import rounds, websocket
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


def _cpu_us(r: dict[str, Any] | None) -> float | None:
    """Balancer CPU µs per request; older results have only the CPU % and the rate."""
    if not r:
        return None
    if r.get("balancer_cpu_us_per_request") is not None:
        return r["balancer_cpu_us_per_request"]
    pct, rate = r.get("balancer_cpu_pct"), r.get("requests_per_s")
    return 1e4 * pct / rate if pct is not None and rate else None


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
            ["h2load", v.get("h2load", "?")],
            *([["redis-server", v["redis-server"]]] if v.get("redis-server") else []),
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
    in_rounds = any((r or {}).get("rounds") for n in names for r in secs[f"scenario:{n}"].values()
                    if isinstance(r, dict))  # results written before the rounds have none
    rows = []
    for n in names:
        sc, pair = SCENARIOS[n], secs[f"scenario:{n}"]
        b, h, c = pair.get("buddylb"), pair.get("haproxy"), pair.get("ceiling")
        d = secs.get(f"direct:{sc.direct}") if sc.direct else None
        rows.append([sc.title, sc.unit, _n(_throughput(b, sc.unit)), _n(_throughput(h, sc.unit)),
                     _n(_throughput(c, sc.unit)),
                     _ratio(_throughput(b, sc.unit), _throughput(h, sc.unit)),
                     _ratio(_throughput(b, sc.unit), _throughput(c, sc.unit)),
                     " / ".join(_n(_cpu_us(r), 1) for r in (b, h, c)),
                     *([_by_round_ratios(b, h, c, sc.unit)] if in_rounds else []),
                     _n(_throughput(d, sc.unit)) if d else NA])
    lines += ["### Summary", "",
              "\"ceiling\": `bench/relay.py`, a bare uvloop relay of the same traffic in the same run (L7: head "
              "split, hop-by-hop removal, a source-IP dict, a keep-alive pool, response framing; L4: a byte "
              "relay), the platform ceiling for a Python balancer. CPU µs/request: the balancer's utime+stime "
              "over the run divided by the requests completed."
              + (" Figures are over all rounds; \"by round\": buddylb / HAProxy and buddylb / ceiling of each "
                 "round alone (adjacent runs), so the spread shows." if in_rounds else ""), ""]
    lines += _table(["scenario", "unit", "buddylb", "HAProxy", "ceiling", "buddylb / HAProxy", "buddylb / ceiling",
                     "CPU µs/req (buddylb / HAProxy / ceiling)",
                     *(["by round (÷ HAProxy; ÷ ceiling)"] if in_rounds else []), "direct to nginx"], rows)
    for n in names:
        lines += _scenario(n, secs, meta)
    return lines + _direct([secs[f"direct:{n}"] | {"name": n} for n in directs]) + _balancers(secs)


def _proxy_intro(st: dict[str, Any]) -> list[str]:
    if st.get("rounds"):
        load = (f"same wrk settings: `wrk -t{st.get('threads', 1)} -c{st.get('connections', 50)} "
                f"-d{st.get('round_seconds', '?')}s --latency` per run, each after a {st.get('warmup_s', 1)} s "
                "warm-up; `-H \"Connection: close\"` for a new connection (or TLS handshake) per request.")
        order = st.get("order") or ["buddylb", "haproxy", "ceiling"]
        turns = [
            f"- Rounds: the three balancers are up side by side (VIP ports of their own, all on core "
            f"{BALANCER_CORE}, idle but for their own timers while another one is measured: the row \"the other "
            "balancers' CPU meanwhile\" says how idle), and each scenario "
            f"is measured in {st['rounds']} round(s) of one run per balancer, in turn, the order reversed every "
            f"other round ({', '.join(order)}; then {', '.join(reversed(order))}; ...). Why: this VM is shared "
            "and its speed drifts over minutes (in one run buddylb's L7 keep-alive took 28.1 µs of CPU per "
            "request, quiet runs minutes later 21-23 µs); measured one balancer after the other, that drift "
            "decided the ratios more than the code did. With an even number of rounds every balancer's runs "
            "sit at the same mean time, so a drift linear in time cancels out of the ratios; faster drift shows "
            "as the spread of the per-round figures (the \"by round\" rows).",
            f"- A scenario's figures add up its runs (`bench/rounds.py`; {st['rounds']} x {st.get('round_seconds')} "
            f"s per balancer for {st.get('seconds', '?')} s asked, whole seconds): req/s (MiB/s) is the total "
            "requests (bytes) over the total measured seconds, CPU µs per request the total CPU over the total "
            "requests, CPU % and core busy over the total wall time, errors summed; p50/p99 are the "
            "request-weighted mean of the runs' own (percentiles of separate runs cannot be merged exactly). "
            "Each run's figures are in `bench-out/results.json` (`rounds`)."]
    else:  # results written before the rounds: one run per balancer and scenario
        load = (f"same wrk settings: `wrk -t{st.get('threads', 1)} -c{st.get('connections', 50)} "
                f"-d{st.get('seconds', '?')}s --latency` after a {st.get('warmup_s', 1)} s warm-up; "
                "`-H \"Connection: close\"` for a new connection (or TLS handshake) per request.")
        turns = []
    return ["## Proxy scenarios", "",
            "- Same run, same nginx backends (lnx1 127.0.1.11, lnx2 127.0.1.12; nginx `worker_processes 1`), "
            + load,
            *turns,
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
            "- `h2-keepalive`: h2load instead of wrk (`h2load -c 10 -m 10 -t 1 -D S`: 10 HTTP/2 connections, "
            "10 concurrent streams each; p50/p99 from its per-request log; the warm-up is a run of its own, "
            "`-D 1 --warm-up-time=1`, and the measured run has `--warm-up-time=0`, so the CPU counted around "
            "it is the measured requests' alone); HAProxy binds "
            "with `alpn h2,http/1.1`; no ceiling (the bare relay speaks HTTP/1.1 only), so its rounds "
            "alternate buddylb and HAProxy.",
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
    b, h, c = pair.get("buddylb") or {}, pair.get("haproxy") or {}, pair.get("ceiling") or {}
    lines = [f"### {sc.title} (`{name}`){_measured(pair, meta)}", ""]
    digits = 1 if sc.unit == "MiB/s" else 0

    def row(label: str, get: Any, fmt: Any, ratio: bool = True) -> list[str]:
        vb, vh, vc = get(b), get(h), get(c)
        return [label, fmt(vb), fmt(vh), fmt(vc), _ratio(vb, vh) if ratio else "", _ratio(vb, vc) if ratio else ""]

    rows = [row(sc.unit, lambda r: _throughput(r, sc.unit), lambda v: _n(v, digits))]
    if any(r.get("rounds") for r in (b, h, c)):
        rows += [_by_round_row(f"{sc.unit} by round", (b, h, c), lambda r: _throughput(r, sc.unit),
                               lambda v: _n(v, digits)),
                 _by_round_row("CPU µs/req by round", (b, h, c), _cpu_us, lambda v: _n(v, 1))]
    if sc.unit == "MiB/s":
        rows.append(row("req/s", lambda r: r.get("requests_per_s"), _n))
    rows += [row("p50 latency", lambda r: r.get("p50_ms"), _ms),
             row("p99 latency", lambda r: r.get("p99_ms"), _ms),
             row("balancer CPU (% of one core)", lambda r: r.get("balancer_cpu_pct"), _n),
             row("balancer CPU µs per request", _cpu_us, lambda v: _n(v, 1)),
             row("backend nginx CPU (%)", lambda r: r.get("backend_cpu_pct"), _n, ratio=False),
             *([row("the other balancers' CPU meanwhile (%)", lambda r: r.get("idle_balancers_cpu_pct"),
                    lambda v: _n(v, 1), ratio=False)] if any("idle_balancers_cpu_pct" in r for r in (b, h, c))
               else []),
             [f"core {BALANCER_CORE} busy, every process (%)", _core(b, BALANCER_CORE), _core(h, BALANCER_CORE),
              _core(c, BALANCER_CORE), "", ""],
             [f"core {LOAD_CORE} busy (wrk + nginx + others, %)", _core(b, LOAD_CORE), _core(h, LOAD_CORE),
              _core(c, LOAD_CORE), "", ""],
             row("requests completed", lambda r: r.get("requests"), _n, ratio=False),
             ["errors (wrk)", _errors(b or None), _errors(h or None), _errors(c or None), "", ""]]
    if any(r.get("alive_after") is False for r in (b, h, c)):  # a balancer died: its figures stop there
        rows.append(["balancer alive after the run", *(NA if not r else "yes" if r.get("alive_after", True)
                                                       else "**no**" for r in (b, h, c)), "", ""])
    return lines + _table(["", "buddylb", "HAProxy", "ceiling", "buddylb / HAProxy", "buddylb / ceiling"], rows)


def _by_round_row(label: str, runs: tuple[dict[str, Any], ...], value: Any, fmt: Any) -> list[str]:
    """One row of each balancer's figure round by round ("35,188 · 33,950"), and the ratios of
    each round's adjacent runs in the ratio columns."""
    b, h, c = runs
    cells = [" · ".join(fmt(v) for _, v in sorted(rounds.by_round(r, value).items())) or NA for r in runs]
    ratios = [" · ".join(f"{x:.2f}×" for x in rounds.round_ratios(b, o, value)) or NA for o in (h, c)]
    return [label, *cells, *ratios]


def _by_round_ratios(b: dict[str, Any] | None, h: dict[str, Any] | None, c: dict[str, Any] | None,
                     unit: str) -> str:
    """The summary's "by round" cell: buddylb / HAProxy of each round; buddylb / ceiling of each."""
    parts = [", ".join(f"{x:.2f}" for x in rounds.round_ratios(b, o, lambda r: _throughput(r, unit)))
             for o in (h, c)]
    return "; ".join(p or NA for p in parts) if any(parts) else NA


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
    lines += _pauses(secs.get("pauses"), meta)
    return lines


def _pauses(pz: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    """Issue 11: the longest step sweep or eviction takes, and the first page of the admin view."""
    if not pz:
        return []
    lines = [f"### Pauses at {pz['entries']:,} entries" + _measured(pz, meta), "",
             f"One table of {pz['entries']:,} entries (`bench/pauses.py`, capacity {pz['capacity']:,}). "
             "Eviction: new clients at capacity, each insert timed alone (each evicts). Sweep: the clock past "
             "the timeout, then `sweep(now, 512)` as the server's sweeper calls it, until empty. Each timed call "
             "is one event-loop step in service. Target: no step over 1 ms.", ""]
    rows = []
    for name in ("eviction", "sweep"):
        h = pz[name]
        cpu = "–" if h.get("cpu_max_us") is None else f"{h['cpu_max_us']:,.1f} µs"
        rows.append([name, _n(h["calls"]), f"{h['p99_us']:,.1f} µs", f"{h['max_us']:,.1f} µs", cpu, _n(h["over_1ms"]),
                     NA if h.get("cpu_max_us") is None else ("yes" if h["cpu_max_us"] <= 1000 else "**no**"),
                     ", ".join(f"{k}: {v:,}" for k, v in h["buckets"].items())])
    lines += _table(["step", "calls", "p99 (wall)", "max (wall)", "max (CPU)", "over 1 ms (wall)",
                     "meets (CPU ≤ 1 ms)", "histogram (wall)"], rows)
    lines += ["Wall time is what the event loop sees; CPU time (`time.thread_time`) of the same call shows "
              "whether a spike was work done by the table or the core taken by another process.", ""]
    rows = [[name, f"{p['median_ms']:.2f} ms", f"{p['max_ms']:.2f} ms", str(p["rows"]),
             "yes" if p["median_ms"] <= 50 else "**no**"] for name, p in pz["show_first_page"].items()]
    lines += ["First page (`limit 50`) of `show sticky database` on the full table, median of 5 (target ≤ 50 ms):", ""]
    return lines + _table(["filter", "median", "max", "rows", "meets"], rows)


def _memory(mem: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    if not mem:
        return []
    target = mem.get("targets", {}).get("bytes_per_entry", 150)
    lines = ["### Memory per sticky entry" + _measured(mem, meta), "",
             "Measured in a fresh process: growth of the resident set (RSS) — or of Python's allocations "
             "(tracemalloc) — while one table grows through `decide()` (every client new), divided by the "
             "entries. Counts the slot arrays (key words, tag, LRU links, stamp, open count, last farm, per-farm "
             "member bytes, generation) and the key index pages the entries touched; not the client address "
             "strings.", ""]
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
        "capacity check. tracemalloc slows the inserts, so its rate is not shown; it sees only Python "
        "objects, and the table keeps none per entry (its arrays are memory maps), hence ~0.", ""]


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


# -- shared sticky store (bench.store) ------------------------------------------------------
def _us(x: float | None) -> str:
    return NA if x is None else f"{x:,.0f} µs" if x >= 10 else f"{x:.1f} µs"


def _cmds(c: dict[str, int] | None) -> str:
    return ", ".join(f"{k.replace('|', ' ')} {v:,}" for k, v in (c or {}).items()) or "none"


def _store(res: dict[str, Any]) -> list[str]:
    secs, meta = res["sections"], res["meta"]
    px, en = secs.get("redis-proxy"), secs.get("redis-engine")
    if not px and not en:
        return []
    from bench.store import PREFIX, TIMEOUT_MS

    lines = ["## Shared sticky store (Redis) vs memory", "",
             "What the global config line `sticky-store redis://127.0.0.1:PORT/0 prefix "
             f"{PREFIX} timeout {TIMEOUT_MS}` costs against the default memory store (`bench/store.py`). "
             "redis-server runs on a free loopback port with `--save '' --appendonly no`, pinned with the load "
             f"(`{' '.join(['taskset', '-c', str(LOAD_CORE)])}`); the balancer side is pinned to core "
             f"{BALANCER_CORE}. The Redis store keeps a local copy of each entry: an entry loaded or written "
             "less than 1 s ago is used without a round trip, a new entry is written with one insert-or-get "
             "script (EVALSHA), and TTL refreshes on close are sent in batches every 100 ms.", ""]
    lines += _store_proxy(px, meta) + _store_engine(en, meta)
    return lines


def _store_proxy(px: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    if not px:
        return []
    from bench.store import GOAL_RATIO, SCENARIO

    lines = [f"### Through the proxy: new connections per second (`redis-proxy`){_measured(px, meta)}", ""]
    if px.get("skipped"):
        return lines + [f"Skipped: {px['skipped']}.", ""]
    st, sm = px.get("settings", {}), px.get("summary", {})
    lines += [f"- buddylb's L7 HTTP VIP of the l7 scenarios (same nginx backends, same config but for the "
              f"`sticky-store` line), the `{SCENARIO}` load: `wrk -t{st.get('threads', 1)} "
              f"-c{st.get('connections', 50)} -d{st.get('seconds', '?')}s --latency -H \"Connection: close\"` "
              f"after a {st.get('warmup_s', 1)} s warm-up, a new connection — and a new decision — per request.",
              "- Both balancers (memory store, Redis store) are up for the whole part, pinned to core "
              f"{BALANCER_CORE}; the runs alternate (memory, Redis, then Redis, memory, ...; "
              f"{st.get('rounds', '?')} round(s) of one run per store) so drift on this shared machine falls on "
              "both. "
              "Figures are the mean over a store's runs; \"buddylb CPU per request\" is its utime+stime over "
              "the run divided by the requests (less sensitive to other work than the rate).",
              "- **wrk connects from one source address (127.0.0.1)**: it is one client and one sticky entry. "
              "After the first request every decision is a sticky hit served from the Redis store's local 1 s "
              "cache — no Redis round trip on the data path — and the TTL refreshes on close are batched (one "
              "pipeline every 100 ms). Each hit also renews the 1 s validity (`RedisStore.commit()` stamps it "
              "even when it neither loaded nor wrote), so under this steady load the Redis balancer never "
              "re-reads the entry: the Redis commands below are the batched PEXPIREs (and the store's DBSIZE "
              "poll every 5 s). This measures the store's fixed cost in the data path (the extra task "
              "and awaits around each decision), not Redis round trips: the costly case, every decision a new "
              "client, is measured in process below.", ""]
    m, r = sm.get("memory") or {}, sm.get("redis") or {}
    rows = [["new connections (decisions) / s", _n(m.get("requests_per_s")), _n(r.get("requests_per_s")),
             _ratio(r.get("requests_per_s"), m.get("requests_per_s"))],
            ["p50 latency", _ms(m.get("p50_ms")), _ms(r.get("p50_ms")), _ratio(r.get("p50_ms"), m.get("p50_ms"))],
            ["p99 latency", _ms(m.get("p99_ms")), _ms(r.get("p99_ms")), _ratio(r.get("p99_ms"), m.get("p99_ms"))],
            ["buddylb CPU per request", _us(m.get("balancer_cpu_us_per_request")),
             _us(r.get("balancer_cpu_us_per_request")),
             _ratio(r.get("balancer_cpu_us_per_request"), m.get("balancer_cpu_us_per_request"))],
            ["buddylb CPU (% of one core)", _n(m.get("balancer_cpu_pct")), _n(r.get("balancer_cpu_pct")), ""],
            ["redis-server CPU (% of one core)", _n(m.get("redis_cpu_pct"), 1), _n(r.get("redis_cpu_pct"), 1), ""],
            ["Redis commands per request", _n(m.get("redis_commands_per_request"), 4),
             _n(r.get("redis_commands_per_request"), 4), ""],
            ["requests completed (all runs)", _n(m.get("requests")), _n(r.get("requests")), ""],
            ["errors (wrk, all runs)", _n(m.get("errors")), _n(r.get("errors")), ""]]
    lines += _table(["", "memory store", "Redis store", "Redis / memory"], rows)
    if sm.get("ratio") is not None:
        goal = sm.get("goal", {})
        rr = ", ".join(f"{x:.2f}×" for x in sm.get("round_ratios", []))
        lines += [f"**Goal: Redis / memory ≥ {goal.get('min_ratio', GOAL_RATIO)}×** (the Redis store costs at most "
                  f"20 % of the memory store's new-connection rate): measured **{sm['ratio']:.2f}×** — meets: "
                  f"{'yes' if goal.get('meets') else '**no**'}. Ratio of each round (adjacent runs): {rr or NA}."
                  + (f" From buddylb's CPU per request alone (+{sm['added_cpu_us_per_request']:.0f} µs with the "
                     f"Redis store): {sm['cpu_ratio']:.2f}×." if sm.get("cpu_ratio") else ""), ""]
    runs = px.get("runs") or []
    if runs:
        lines += ["Runs, in order:", ""]
        lines += _table(["run", "store", "req/s", "p50", "p99", "buddylb CPU / request",
                         f"core {BALANCER_CORE} busy (%)", f"core {LOAD_CORE} busy (%)", "Redis commands", "errors"],
                        [[str(x["run"]), x["store"], _n(x.get("requests_per_s")), _ms(x.get("p50_ms")),
                          _ms(x.get("p99_ms")), _us(x.get("balancer_cpu_us_per_request")), _core(x, BALANCER_CORE),
                          _core(x, LOAD_CORE), _cmds(x.get("redis_commands")), _errors(x)] for x in runs])
    bal, rd = px.get("balancers") or {}, px.get("redis") or {}
    if bal:
        rows = []
        for kind, b in bal.items():
            sticky = b.get("sticky") or {}
            store = sticky.get("store") or {}
            status = (f"{store.get('kind', '?')}, degraded {store.get('degraded')}, errors {store.get('errors', 0)}"
                      if store else NA)
            rows.append([kind, _n(sticky.get("entries")) if sticky else NA,
                         ", ".join(f"{k} {v:,}" for k, v in (sticky.get("detail") or {}).items()) or NA, status,
                         str(b.get("backend_seen", NA)), str(b.get("returncode"))])
        lines += ["After the runs (admin `GET /show/stats-sticky`):", ""]
        lines += _table(["buddylb", "sticky entries", "counters", "store", "first response", "exit code"], rows)
    if rd.get("keys") is not None:
        ttl = ", ".join(f"`{k}` PTTL {v:,} ms" for k, v in (rd.get("pttl_ms") or {}).items())
        lines += [f"Redis after the runs: {_n(rd.get('dbsize'))} key(s) ({ttl or 'none'}); every command Redis "
                  f"executed in the part: {_cmds(rd.get('commands_total'))} (Redis counts the commands a script "
                  "runs: EXISTS, HSET, PEXPIRE inside each EVALSHA).", ""]
    if px.get("error"):
        lines += [f"Failure: `{_one_line(px['error'])}`", ""]
    for kind, b in bal.items():
        notable = [ln for ln in (b.get("stderr") or "").strip().splitlines() if any(w in ln for w in NOTABLE)]
        if notable:
            lines += [f"buddylb ({kind} store) stderr, notable lines (last 15):", "", "```",
                      "\n".join(notable[-15:]), "```", ""]
    quiet = [k for k, b in bal.items() if not any(any(w in ln for w in NOTABLE)
                                                  for ln in (b.get("stderr") or "").splitlines())]
    if quiet:
        lines += [f"stderr of buddylb ({', '.join(quiet)} store): INFO lines only "
                  "(`bench-out/buddylb-l7-*-store.stderr`).", ""]
    return lines


def _store_engine(en: dict[str, Any] | None, meta: dict[str, Any]) -> list[str]:
    if not en:
        return []
    lines = [f"### In process: every decision a new client (`redis-engine`){_measured(en, meta)}", ""]
    if en.get("skipped"):
        return lines + [f"Skipped: {en['skipped']}.", ""]
    lines += [f"{_n(en.get('clients'))} distinct client addresses, one decision each, through the bracket the data "
              "path uses (`Balancer.decide_shared`): `locate()`, `await store.load()`, `decide()`, "
              "`await store.commit()` with a redecide callback; the connection closes right after (`closed()`, "
              "untimed). The same code runs with `MemoryStore` (its awaits return at once) and with the real "
              f"`RedisStore` (timeout {en.get('timeout_ms', '?')} ms, {en.get('cache_s', 1.0):g} s cache) against the "
              "real redis-server, on "
              f"the {en.get('loop', '?')} loop, this process pinned to {en.get('pinned', '?')}. ONE_TO_ONE "
              "configuration of the engine section; a fresh engine (and a fresh Redis prefix) per pass; passes "
              f"alternate memory / Redis over {en.get('rounds', '?')} round(s). Each decision's wall time is "
              "taken (`perf_counter`), so the TTL batches the store flushes every 100 ms land in the decision "
              "they interrupt, as in service.", "",
              "- **new clients**: with Redis, one GET (load, a miss) and one EVALSHA (insert-or-get) per "
              "decision — two round trips;",
              "- **returning clients**: the same clients again (another order) once the cache has expired, "
              "as when a client comes back to another node: one GET, no write (a rule-3 hit writes nothing).",
              ""]
    sm = en.get("summary") or {}
    titles = {"new": "new clients (every decision inserts)", "returning": "returning clients (cache expired)"}
    rows = []
    for phase in ("new", "returning"):
        row = sm.get(phase) or {}
        m, r = row.get("memory") or {}, row.get("redis") or {}
        if not m and not r:
            continue
        rows.append([titles[phase], _n(m.get("rate")), _n(r.get("rate")), _ratio(r.get("rate"), m.get("rate")),
                     f"{_us(m.get('p50_us'))} / {_us(m.get('p99_us'))}",
                     f"{_us(r.get('p50_us'))} / {_us(r.get('p99_us'))}",
                     f"+{_us(row.get('added_p50_us'))} / +{_us(row.get('added_p99_us'))}",
                     f"+{_us(row.get('added_mean_us'))}", _n(r.get("round_trips_per_decision"), 2)])
    lines += _table(["pass", "memory: decisions/s", "Redis: decisions/s", "Redis / memory",
                     "memory p50 / p99", "Redis p50 / p99", "added by Redis p50 / p99", "added, mean",
                     "Redis round trips per decision"], rows)
    fl = en.get("round_trip_floor") or {}
    if fl.get("bare"):
        lines += [f"For scale: one redis-py round trip on this machine (GET of a missing key, "
                  f"{_n(fl.get('round_trips'))} in a row, same loop) takes {_us(fl['bare']['p50_us'])} p50 / "
                  f"{_us(fl['bare']['p99_us'])} p99, or {_us(fl['wait_for']['p50_us'])} / "
                  f"{_us(fl['wait_for']['p99_us'])} inside `asyncio.wait_for` as RedisStore calls it.", ""]
    bad = [(ph, k) for ph, row in sm.items() for k in ("redis",) if (row.get(k) or {}).get("errors")
           or (row.get(k) or {}).get("degraded")]
    if bad:
        lines += ["**The Redis store reported errors or went degraded during a pass: its figures then include "
                  "decisions served from the local table alone.**", ""]
    passes = en.get("passes") or []
    if passes:
        lines += ["Passes, in order:", ""]
        lines += _table(["pass", "store", "clients", "decisions/s", "p50", "p99", "max", "outcomes",
                         "round trips / decision", "Redis executed", "store errors"],
                        [[str(p["pass"]), p["store"], p["phase"], _n(p["rate"]), _us(p["p50_us"]), _us(p["p99_us"]),
                          _us(p["max_us"]), ", ".join(f"{k} {v:,}" for k, v in p["outcomes"].items()),
                          _n(p.get("round_trips_per_decision"), 2), _cmds(p.get("redis_commands")),
                          str((p.get("store_status") or {}).get("errors", NA))] for p in passes])
    fresh = en.get("redis_fresh_entries_after")
    if fresh:
        lines += [f"`RedisStore.fresh` (the cache-validity map) held {', '.join(_n(x) for x in fresh)} entries after "
                  f"each Redis pass of {_n(en.get('clients'))} clients: one per key ever seen, not pruned when the "
                  "validity ends.", ""]
    if en.get("error"):
        lines += [f"Failure: `{_one_line(en['error'])}`", ""]
    return lines


def _websocket(res: dict[str, Any]) -> list[str]:
    sec = res["sections"].get("websocket")
    if not sec:
        return []
    if sec.get("skipped"):
        return ["### WebSocket echo (`websocket`)", "", f"Skipped: {sec['skipped']}.", ""]
    return websocket.report_lines(sec, _measured(sec, res["meta"]), _n, _ratio, _table)


ANALYSIS = Path(__file__).with_name("ANALYSIS.md")  # hand-written: what was tried, why gaps remain


def render(res: dict[str, Any]) -> str:
    lines = _header(res) + _proxy(res) + _websocket(res) + _store(res) + _engine(res) + _profiles(res)
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    lines += _stderr(res)
    return "\n".join(lines).rstrip() + "\n"
