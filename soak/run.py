"""`python -m soak.run` (`make soak`): the long reliability runs, then RELIABILITY.md.

Pieces (each prints its figures as it ends):
1. sticky capacity and LRU: 1M distinct clients into a 500k table (fresh process);
2. sticky memory: VmRSS for 1M entries, then after 3M more insert/evict cycles;
3. idle L4 connections: 10k held open through a buddylb process, RSS per connection;
4. reload under load: 20 SIGHUP reloads during 60 s of wrk against an L7 VIP, once
   with keep-alive connections, once with a new connection per request (last: its
   hundreds of thousands of connections leave loopback ports in TIME_WAIT);
5. the attacks of issue 13 (`soak.attacks`): hostile admin requests, idle floods of the
   admin port and of a VIP under a low descriptor limit, a 408 flood, CBC-only TLS
   clients, a 20k-member farm checked and reloaded, slowloris and slow-read clients
   beside a permitted one; HAProxy runs the same where cheap.

`--quick` runs every piece at test size (a smoke run of this script, ~1 minute).
The whole soak takes about 6 minutes on two cores.  Exit status 0 when every piece
passed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from soak import attacks, wrk

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Piece:
    name: str
    ok: bool
    figures: dict
    seconds: float
    note: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)  # (figure, value) for the report


@dataclass(frozen=True)
class Sizes:
    reload_s: int = 60
    reloads: int = 20
    lru_clients: int = 1_000_000
    lru_capacity: int = 500_000
    rss_entries: int = 1_000_000
    rss_cycles: int = 3_000_000
    idle_connections: int = 10_000


QUICK = Sizes(reload_s=6, lru_clients=20_000, lru_capacity=10_000, rss_entries=50_000, rss_cycles=150_000,
              idle_connections=500)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    wrk_version = ""
    if wrk.available():
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk_version = out.splitlines()[0].split(" [")[0] if out else ""
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": mem, "kernel": platform.release(),
            "python": platform.python_version(), "wrk": wrk_version}


def _subprocess_json(args: list[str], timeout: float) -> dict:
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def reload_piece(sizes: Sizes, close: bool) -> Piece:
    from soak.reload_load import reload_under_load

    kind = "new connection per request" if close else "keep-alive"
    name = f"reload under load ({kind})"
    if not wrk.available():
        return Piece(name, False, {}, 0.0, "wrk is not installed: apt-get install wrk")
    start = time.monotonic()
    run = reload_under_load(sizes.reload_s, sizes.reloads, close)
    f = run.as_dict()
    rows = [("reloads applied", f"{run.reloads_done} / {run.reloads_sent}"),
            ("requests", f"{run.requests:,} in {run.seconds} s ({run.rps:,.0f}/s, wrk -t1 -c20)"),
            ("latency p50 / p99 / max",
             " / ".join(f"{run.latency_ms.get(k, 0):.1f} ms" for k in ("50%", "99%", "max"))),
            ("socket errors", ", ".join(f"{k} {v}" for k, v in run.socket_errors.items()) or "0"),
            ("non-2xx responses", str(run.non_2xx)),
            ("errors in buddylb's log", str(len(run.log_errors)))]
    return Piece(name, run.ok, f, time.monotonic() - start, rows=rows)


def lru_piece(sizes: Sizes) -> Piece:
    start = time.monotonic()
    f = _subprocess_json(["soak.sticky_memory", "lru", str(sizes.lru_clients), str(sizes.lru_capacity)], 900)
    rows = [("clients / capacity", f"{f['clients']:,} / {f['capacity']:,}"),
            ("entries after", f"{f['size']:,}"),
            ("evictions", f"{f['evictions']:,}"),
            ("oldest kept is exactly client N - capacity", "yes" if f["boundary_exact"] else "NO"),
            ("recent sample present / old sample gone",
             f"{f['sample_present']} / {f['sample_absent']} of {f['sample']}"),
            ("refreshed entries outlive older ones (LRU, not FIFO)", "yes" if f["touched_kept"] else "NO"),
            ("decisions per second", f"{f['clients'] / f['seconds']:,.0f} (one core, decide + closed)")]
    return Piece(f"sticky capacity and LRU ({sizes.lru_clients:,} clients)", f["ok"], f,
                 time.monotonic() - start, rows=rows)


def rss_piece(sizes: Sizes) -> Piece:
    start = time.monotonic()
    f = _subprocess_json(["soak.sticky_memory", "rss", str(sizes.rss_entries), str(sizes.rss_cycles)], 900)
    mib = 1024 * 1024
    rows = [("RSS before / with full table", f"{f['rss_before'] / mib:.1f} MiB / {f['rss_full'] / mib:.1f} MiB"),
            ("RSS per entry", f"{f['bytes_per_entry']:.0f} bytes"),
            (f"RSS after {f['cycles']:,} more insert/evict cycles", f"{f['rss_after_cycles'] / mib:.1f} MiB"),
            ("after / full (limit 1.25)", f"{f['ratio']:.3f}"),
            ("peak during the cycles / full", f"{f['peak_ratio']:.3f}"),
            ("RSS through the cycles (each twelfth), MiB", " ".join(f"{r / mib:.0f}" for r in f["rss_samples"])),
            ("bounded (last third under the earlier peak)", "yes" if f["bounded"] else "NO"),
            ("entries / evictions", f"{f['size']:,} / {f['evictions']:,}")]
    note = ""
    if f["peak_ratio"] > 1.25:
        note = ("The peak exceeds 1.25x for a while: a CPython dict that sees deletions and insertions is "
                "resized for 3x its live entries, so the sticky table's hash index grows one step early in the "
                "cycles; the later compaction brings RSS back, and it does not grow further.")
    return Piece(f"sticky memory ({sizes.rss_entries:,} entries)", f["ok"], f, time.monotonic() - start, note,
                 rows)


def idle_piece(sizes: Sizes) -> Piece:
    from soak.idle_l4 import idle_connections

    start = time.monotonic()
    run = idle_connections(sizes.idle_connections)
    f = run.as_dict()
    mib = 1024 * 1024
    note = ""
    if run.workers > 1:
        note = (f"RLIMIT_NOFILE hard limit is {run.nofile_hard} here and cannot be raised (no CAP_SYS_RESOURCE); "
                f"{run.connections:,} relayed connections need {2 * run.connections:,} descriptors, so buddylb ran "
                f"with --workers {run.workers} and the RSS figures sum its processes.")
    rows = [("connections served (greeted by the backend) / held", f"{run.served:,} / {run.connections:,}"),
            ("echo sample after all were open", f"{run.echo_ok} / {run.echo_sample}"),
            ("buddylb processes", f"{run.workers} worker(s)" + (" + master" if run.workers > 1 else "")),
            ("buddylb RSS before / after", f"{run.rss_before / mib:.1f} MiB / {run.rss_after / mib:.1f} MiB"),
            ("RSS per idle L4 connection", f"{run.bytes_per_connection:,.0f} bytes"),
            ("time to open and greet all", f"{run.seconds_to_open} s")]
    return Piece(f"idle L4 connections ({sizes.idle_connections:,})", run.ok, f, time.monotonic() - start, note, rows)


def report(pieces: list[Piece], info: dict[str, str], total_s: float, quick: bool) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "all passed" if all(p.ok for p in pieces) else "FAILURES"
    out = [
        "# Reliability",
        "",
        "What buddylb withstands, measured. This file is written by `make soak` (`python -m soak.run`);",
        "the figures below are from the last run. The quick versions of every piece run in `make test`",
        "(tests/e2e/test_reload_load.py, test_memory_quick.py), together with the timeout and fault",
        "tests (tests/e2e/test_timeouts.py, test_faults.py) listed at the end.",
        "",
        f"- run: {when}{' (quick sizes: a smoke run, not the soak)' if quick else ''}, "
        f"{total_s / 60:.1f} minutes, {verdict}",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM, Linux {info['kernel']}",
        f"- software: Python {info['python']}, uvloop, {info['wrk'] or 'wrk not installed'}; "
        "everything on loopback, one buddylb process unless noted",
        "",
    ]
    for p in pieces:
        out += [f"## {p.name}: {'pass' if p.ok else 'FAIL'}", "", "| figure | value |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in p.rows]
        out += [f"| duration | {p.seconds:.0f} s |", ""]
        if p.note:
            out += [p.note, ""]
    out += [
        "## Method",
        "",
        "- Reload under load: two valid configurations that differ in a weight and a comment are",
        "  swapped by SIGHUP, each reload confirmed through `/info` before the next, while",
        "  `wrk -t1 -c20 --latency` drives an L7 VIP with two backends (keep-alive, then",
        "  `Connection: close`). Pass: every reload applied, no socket error, no non-2xx response,",
        "  no error in buddylb's log.",
        "- Sticky capacity and LRU: in-process through `Balancer.decide` / `Balancer.closed`, one",
        "  connection per distinct client address (10.0.0.0/8, /32 source stickiness). Pass: the",
        "  table stays at capacity, evictions = clients - capacity, the oldest kept entry is exactly",
        "  the first one after the evicted range, samples of recent / old clients are present /",
        "  gone, and refreshed old entries survive while the next oldest are evicted.",
        "- Sticky memory: VmRSS of a fresh process before and after filling the table, then after",
        "  each twelfth of three times as many further clients, each of which evicts one entry.",
        "  Pass: RSS after the cycles is within 1.25x of the full table's, and the last third of",
        "  the samples stays under the earlier peak (bounded: no leak). The peak is reported.",
        "- Idle L4 connections: clients in the soak process, the backend in a child process,",
        "  buddylb in another; every connection must be greeted by the backend through buddylb and",
        "  a sample must still echo once all are open; VmRSS of buddylb before and after.",
        "",
        "## Covered in make test",
        "",
        "- Timeouts (test_timeouts.py, one-second timeouts): slowloris and silent clients get",
        "  408 then a FIN; an idle keep-alive connection is closed silently; a slow request body",
        "  is cut off and never completes at the backend; a client that stops reading is aborted",
        "  after `timeout client` together with its server connection; a TLS client that never",
        "  handshakes is closed after `timeout tls-handshake`; a server that never answers gives",
        "  504; a blackholed server (SYNs dropped) gives 502 after `timeout connect`, or the",
        "  retry on another server; idle L4 relays and silent ssl-session clients are closed. A",
        "  well-behaved client runs alongside each case and must see no error.",
        "- Faults (test_faults.py): a request whose body a server read before dying is never",
        "  replayed (502); a refused connect is retried elsewhere, body included; a server that",
        "  resets or closes mid-response leaves the client the bytes it sent and a close, never",
        "  a completed or 502-appended response, and no half-closed server connection; all",
        "  servers down gives 503 at once with no connect attempt; a backup farm serves when the",
        "  primary farm is down; `conn-limit max 2` queues a third request until a slot frees,",
        "  or 503 at `timeout queue`; a flapping backend gets client traffic only inside the",
        "  probe's detection window.",
        "- Issue 13 (hostile clients): tests/admin/test_gate.py (admin deadlines 408, 413 before",
        "  reading, connection cap with oldest-idle eviction and 503, Host / Origin / Content-Type,",
        "  malformed HTTP as JSON 4xx), test_hostile.py (type confusion, bad bodies, 60,000 `[`,",
        "  cross-site requests change nothing), test_flood.py (1000 idle admin connections under",
        "  a 256-descriptor limit; VIPs and the admin API keep serving), tests/e2e/test_descriptors.py",
        "  (400 idle clients under a 200-descriptor limit: accept pauses, probes stay up, the next",
        "  request after the flood is served at once), test_timeouts.py (a 408 flood is one log line",
        "  and a metric), tests/tls/test_ciphers.py (a CBC-only client fails the handshake),",
        "  tests/io/test_reload_off_loop.py (a reload compiles in a worker thread while the loop",
        "  turns), tests/io/test_retire.py (the replaced snapshot is freed in a worker thread, once",
        "  no flow holds it), tests/config/test_invalid.py (duplicate farm members by index),",
        "  tests/config/test_linear.py (check + compile execute 4x the Python lines for 4x the",
        "  members, where a scan per member made 16x), tests/admin/test_gate_fuzz.py (Hypothesis",
        "  mutants of valid admin requests: each gets 200 or a JSON 4xx, never silence or a hang),",
        "  tests/e2e/test_accept_failures.py (the soft limit lowered under a running buddylb: the",
        "  full descriptor table is logged once, counted, accept pauses and later clients wait",
        "  instead of being closed), tests/e2e/test_vip_conn_limit.py (a VIP at its `conn-limit`",
        "  keeps new clients in the backlog while another VIP serves; each pause is counted on",
        "  /metrics), tests/e2e/test_ace_udp.py (a UDP VIP's `conn-limit` caps its open flows,",
        "  drops and counts new clients' datagrams, and lets them in once flows end).",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="test sizes: a smoke run of the soak itself")
    ap.add_argument("--out", type=Path, default=ROOT / "RELIABILITY.md")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    steps = [("sticky capacity and LRU", lambda: lru_piece(sizes)), ("sticky memory", lambda: rss_piece(sizes)),
             ("idle L4 connections", lambda: idle_piece(sizes)),
             ("reload under load (keep-alive)", lambda: reload_piece(sizes, False)),
             ("reload under load (new connection per request)", lambda: reload_piece(sizes, True))]
    pieces: list[Piece] = []
    start = time.monotonic()
    for name, step in steps:
        began = time.monotonic()
        try:
            piece = step()
        except Exception as exc:  # one broken piece must not hide the others' figures
            piece = Piece(name, False, {}, time.monotonic() - began, f"error: {type(exc).__name__}: {exc}")
        pieces.append(piece)
        print(f"\n== {piece.name}: {'pass' if piece.ok else 'FAIL'} ({piece.seconds:.0f} s)", flush=True)
        for k, v in piece.rows:
            print(f"   {k}: {v}", flush=True)
        if piece.note:
            print(f"   note: {piece.note}", flush=True)
    previous = args.out.read_text() if args.out.exists() else ""
    text = report(pieces, info, time.monotonic() - start, args.quick)
    if attacks.BEGIN in previous and attacks.END in previous:  # keep the table until it is re-run below
        block = previous[previous.index(attacks.BEGIN):previous.index(attacks.END) + len(attacks.END)]
        text = text.replace("## Method", block + "\n\n## Method", 1)
    args.out.write_text(text)
    print(f"\nwrote {args.out}")
    print("\n== attacks (issue 13)", flush=True)
    attacked = attacks.main(["--out", str(args.out)] + (["--quick"] if args.quick else []))
    return 0 if all(p.ok for p in pieces) and attacked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
