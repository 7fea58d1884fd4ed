"""Smoke test of the bench code path (`make bench`) with tiny sizes. No timing assertions."""
from __future__ import annotations

import http.server
import shutil
import threading

import pytest

from bench import engine, memory, profile, report, store, tools, wrk
from tests.support.procs import stop

N = 2_000

WRK_OUTPUT = """Running 3s test @ http://127.0.0.100:41000/small.html
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  310.00us   9.80ms   90.00%
    Req/Sec    23.40k     1.20k   25.00k    80.00%
  Latency Distribution
     50%    2.05ms
     75%    2.20ms
     90%    2.40ms
     99%  850.00us
  69854 requests in 3.00s, 1.50GB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  23280.51
Transfer/sec:    512.00MB
"""


def test_make_clients_distinct_addresses():
    clients = engine.make_clients(N)
    assert len(set(clients)) == N
    assert all(c.startswith("10.") and c.count(".") == 3 for c in clients)


def test_engine_paths_have_the_expected_outcomes():
    res = engine.run_engine(N)
    assert res["floor"]["rate"] > 0
    paths = res["paths"]
    for name in ("insert", "hit", "buddy"):
        assert paths[name]["rate"] > 0 and paths[name]["ratio"] > 0
    assert paths["insert"]["outcomes"].get("misses") == N
    assert paths["hit"]["outcomes"].get("hits") == N
    assert paths["buddy"]["outcomes"].get("buddy_hits") == 2 * N  # every decision of the pass
    assert paths["buddy"]["decisions"] == 2 * N
    assert res["table"]["entries"] == N


def test_memory_growth_counts_entries():
    for use_tracemalloc in (False, True):
        res = memory.grow([N // 2, N], use_tracemalloc)
        first, last = res["checkpoints"]
        assert (first["entries"], last["entries"]) == (N // 2, N)
        assert last["unstored"] == 0 and last["evictions"] == 0
    assert res["method"] == "tracemalloc" and last["bytes"] > 0 and last["bytes_per_entry"] > 0


def test_engine_profile_rows():
    res = engine.profile_decide(500, top=5)
    assert res["decisions"] == 1000
    # compiled, Flow and decide() are C: fewer Python-visible functions than `top` may remain
    assert 0 < len(res["rows"]) <= 5 and all(r["calls"] > 0 for r in res["rows"])
    assert any(r["calls"] >= 1000 and "decide" in r["function"] for r in res["rows"])  # decide() or its parts


def test_wrk_parse():
    r = wrk.parse(WRK_OUTPUT)
    assert r.requests == 69854 and r.seconds == 3.0
    assert r.requests_per_s == 23280.51 and r.mib_per_s == 512.0
    assert r.p50_ms == 2.05 and r.p99_ms == 0.85
    assert r.errors == {"read": 3, "timeout": 2, "non2xx": 7}
    assert "-H" in wrk.command("http://x/", 3, close=True)


def test_collapsed_profile_summary(tmp_path):
    raw = tmp_path / "p.collapsed"
    raw.write_text("run (uvloop/__init__.py:1);data_received (buddylb/io/l7.py:10);decide (buddylb/core/decide.py:5) 3\n"
                   "run (uvloop/__init__.py:1);data_received (buddylb/io/l7.py:10) 1\n")
    res = profile.collapsed_rows(raw)
    assert res["samples"] == 4
    assert res["own"][0]["function"].startswith("decide")
    assert {a["area"] for a in res["areas"]} == {"buddylb.core", "buddylb.io"}


def test_report_renders_engine_results():
    res = engine.run_engine(N)
    mem = {"rss": memory.grow([N], False), "targets": {"bytes_per_entry": 150}}
    meta = {"machine": {"date": "d", "cpu": "c", "cores": 2, "kernel": "k", "python": "3"}, "mode": "quick",
            "wall_s": 1.0, "versions": {}}
    text = report.render({"meta": meta, "sections": {"engine": res | {"measured": {"date": "d"}},
                                                     "memory": mem | {"measured": {"date": "d"}}}})
    assert "## Engine" in text and "floor" in text and "bytes/entry" in text


@pytest.mark.skipif(tools.find_program("redis-server") is None, reason="redis-server is not installed")
def test_store_bracket_memory_and_redis_with_a_real_redis_server():
    """`redis-engine` in small: the data path's store bracket, MemoryStore vs RedisStore."""
    n = 150
    res = store.run_store_engine(n, 1, tools.find_program("redis-server"), lambda s: None, cache_s=0.05,
                                 timeout_ms=1000)
    assert "error" not in res, res.get("error")
    assert res["redis"]["returncode"] is not None  # the redis-server was stopped
    assert res["redis"]["dbsize"] >= n  # one string per client
    by = {(p["store"], p["phase"]): p for p in res["passes"]}
    for kind in ("memory", "redis"):
        assert by[(kind, "new")]["outcomes"] == {"new": n}
        assert by[(kind, "returning")]["outcomes"] == {"sticky_hit": n}
        assert len({p["decisions"] for p in res["passes"] if p["store"] == kind}) == 1
    new, back = by[("redis", "new")], by[("redis", "returning")]
    # one GET to load, one inside the insert-or-get script (Redis counts commands scripts run),
    # plus the restart check's GET of the marker once a second
    assert 2 * n <= new["redis_commands"].get("get") <= 2 * n + 10 and new["redis_commands"].get("evalsha", 0) >= n
    assert 2 <= new["round_trips_per_decision"] < 2.5  # load + insert-or-get (+ the batched TTL pipelines)
    assert 1 <= back["round_trips_per_decision"] < 1.5 and "evalsha" not in back["redis_commands"]
    assert new["store_status"]["errors"] == 0 and not new["store_status"]["degraded"]
    assert by[("memory", "new")]["round_trips"] == 0
    summary = res["summary"]["new"]
    assert summary["memory"]["rate"] > 0 and summary["redis"]["rate"] > 0 and summary["ratio"] > 0
    assert res["round_trip_floor"]["bare"]["p50_us"] > 0


def test_report_renders_the_store_section():
    runs = [{"run": 1, "store": "memory", "requests": 100, "requests_per_s": 50.0, "p50_ms": 1.0, "p99_ms": 2.0,
             "redis_commands": {}, "balancer_cpu_us_per_request": 100.0},
            {"run": 2, "store": "redis", "requests": 90, "requests_per_s": 45.0, "p50_ms": 1.1, "p99_ms": 2.5,
             "redis_commands": {"pexpire": 3}, "balancer_cpu_us_per_request": 110.0}]
    summary = store.summarize_proxy(runs)
    assert abs(summary["ratio"] - 0.9) < 1e-9 and summary["goal"]["meets"] and summary["round_ratios"] == [0.9]
    passes = [{"pass": 1, "store": k, "phase": ph, "decisions": 10, "seconds": s, "rate": 10 / s, "p50_us": 1.0,
               "p99_us": 2.0, "max_us": 3.0, "outcomes": {"new": 10}, "round_trips_per_decision": rt,
               "redis_commands": {"script|load": 1}}
              for k, s, rt in (("memory", 0.001, 0.0), ("redis", 0.01, 2.0)) for ph in ("new", "returning")]
    meta = {"machine": {"date": "d", "cpu": "c", "cores": 2, "kernel": "k", "python": "3"}, "mode": "quick",
            "wall_s": 1.0, "versions": {"redis-server": "Redis server v=7"}}
    text = report.render({"meta": meta, "sections": {
        "redis-proxy": {"runs": runs, "summary": summary, "settings": {"rounds": 1}, "measured": {"date": "d"}},
        "redis-engine": {"clients": 10, "passes": passes, "summary": store.summarize_engine(passes),
                         "measured": {"date": "d"}}}})
    assert "## Shared sticky store (Redis) vs memory" in text
    assert "0.90×" in text and "one source address" in text and "script load 1" in text


@pytest.mark.skipif(tools.find_program("redis-server") is None, reason="redis-server is not installed")
def test_scaling_figures_in_small():
    """`bench.scaling` (SCALING.md) in small: the layouts' memory and the per-decision counts."""
    from bench import scaling

    res = scaling.run(2000)
    mem = res["memory"]
    assert mem["string"]["memory_usage_bytes"] <= 100 < mem["hash"]["memory_usage_bytes"]
    new = res["per_decision"]["redis"]["new"]
    assert new["outcomes"] == {"new": 200} and 2 <= new["round_trips_per_decision"] < 2.5
    # one EVALSHA each (the first one again after NOSCRIPT: redis-py loads the script then)
    assert 1 <= new["redis_commands_per_decision"]["evalsha"] < 1.05 and new["bytes_to_redis_per_decision"] > 0
    back = res["per_decision"]["redis"]["returning"]
    assert back["outcomes"] == {"sticky_hit": 200} and "evalsha" not in back["redis_commands_per_decision"]
    assert res["per_decision"]["redis"]["write_back"]["written"] == 200


def _relay(mode: str, backends, tmp_path):
    """bench.relay in a subprocess in front of two test backends; yields (port, backends)."""
    from tests.support.net import free_port

    port = free_port("127.0.0.100")
    b1_port, b2_port = free_port("127.0.1.11"), free_port("127.0.1.12")
    kind = backends.http if mode == "l7" else backends.tcp
    b1, b2 = kind("lnx1", "127.0.1.11", b1_port), kind("lnx2", "127.0.1.12", b2_port)
    proc = _start_relay(mode, port, f"127.0.1.11:{b1_port},127.0.1.12:{b2_port}", tmp_path)
    return proc, port, (b1, b2)


def _start_relay(mode: str, port: int, servers: str, tmp_path):
    """bench.relay in a subprocess on 127.0.0.100:`port` in front of `servers`."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    ready = tmp_path / "ready"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "bench.relay", "--mode", mode, "--http", str(port),
                             "--servers", servers, "--ready", str(ready)], cwd=repo, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_ceiling_relay_l7_forwards_sticks_and_keeps_alive(tmp_path):
    """The L7 ceiling relays real HTTP: hop-by-hop dropped, XFF added, one backend per
    source address, the keep-alive client connection reused."""
    from tests.support.backends import Backends
    from tests.support.net import connect_from, parse_response, read_all

    with Backends() as backends:
        proc, port, (b1, b2) = _relay("l7", backends, tmp_path)
        try:
            s = connect_from("127.0.0.10", "127.0.0.100", port)
            for _ in range(3):  # keep-alive: three requests on one connection
                s.sendall(b"GET /x HTTP/1.1\r\nHost: v\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 5\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(65536)
                status, hdrs, body = parse_response(head)
                n = int(hdrs["content-length"])
                while len(body) < n:
                    body += s.recv(65536)
                assert status == 200 and body in (b"lnx1", b"lnx2")
            s.sendall(b"GET /y HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n")
            status, hdrs, _ = parse_response(read_all(s))
            assert status == 200 and hdrs.get("connection") == "close"
            s.close()
        finally:
            stop(proc)
        reqs = b1.requests + b2.requests
        assert len(reqs) == 4 and (not b1.requests or not b2.requests)  # stuck to one server
        assert all(h[b"x-forwarded-for"] == b"127.0.0.10" and b"keep-alive" not in h for _, h, _ in reqs)
        assert b1.connections + b2.connections == 1  # the pooled server connection was reused


def test_ceiling_relay_l4_relays_bytes(tmp_path):
    from tests.support.backends import Backends
    from tests.support.net import connect_from

    with Backends() as backends:
        proc, port, _ = _relay("l4", backends, tmp_path)
        try:
            s = connect_from("127.0.0.10", "127.0.0.100", port)
            greeting = s.recv(100)
            assert greeting in (b"lnx1\n", b"lnx2\n")
            s.sendall(b"ping")
            got = b""
            while len(got) < 4:
                got += s.recv(100)
            assert got == b"ping"
            s.close()
        finally:
            stop(proc)


def test_ceiling_relay_l4_closes_both_sockets_after_a_lingering_close(tmp_path):
    """nginx answers `Connection: close` with a lingering close: it half-closes after the
    response and waits for the client's EOF. Once both directions have ended the relay
    must close both sockets; it used to keep them for ever and ran out of descriptors
    after ~500 connections (the l4-close ceiling row: 1 request completed)."""
    import os
    import socket
    import threading
    import time

    from tests.support.net import connect_from, free_port

    n = 40
    backend = socket.create_server(("127.0.1.11", free_port("127.0.1.11")))
    backend.settimeout(10)

    def serve() -> None:
        for _ in range(n):
            try:
                c, _ = backend.accept()
            except OSError:
                return
            with c:
                c.settimeout(10)
                c.recv(100)
                c.sendall(b"pong")
                c.shutdown(socket.SHUT_WR)
                while c.recv(100):  # lingering: wait for the EOF the relay passes on
                    pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    port = free_port("127.0.0.100")
    where = f"127.0.1.11:{backend.getsockname()[1]}"
    proc = _start_relay("l4", port, f"{where},{where}", tmp_path)
    try:
        fds = f"/proc/{proc.pid}/fd"
        before = len(os.listdir(fds))
        for _ in range(n):
            s = connect_from("127.0.0.10", "127.0.0.100", port)
            s.settimeout(10)
            s.sendall(b"ping")
            got = b""
            while chunk := s.recv(100):
                got += chunk
            assert got == b"pong"  # the response, then the server's EOF passed through
            s.close()
        server.join(15)
        deadline = time.monotonic() + 10
        while len(os.listdir(fds)) > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(fds)) <= before  # every relayed connection's two sockets closed
    finally:
        stop(proc)
        backend.close()


def test_report_shows_ceiling_ratios_and_cpu_per_request():
    meta = {"machine": {"date": "d", "cpu": "c", "cores": 2, "kernel": "k", "python": "3"}, "mode": "quick",
            "wall_s": 1.0, "versions": {}}
    run = {"requests_per_s": 1000.0, "requests": 3000, "balancer_cpu_pct": 90.0, "balancer_cpu_us_per_request": 900.0}
    pair = {"buddylb": run, "haproxy": run | {"requests_per_s": 4000.0, "balancer_cpu_us_per_request": 200.0},
            "ceiling": run | {"requests_per_s": 2000.0, "balancer_cpu_us_per_request": None}, "measured": {"date": "d"}}
    text = report.render({"meta": meta, "sections": {"scenario:l7-keepalive": pair}})
    assert "buddylb / ceiling" in text and "0.25×" in text and "0.50×" in text
    assert "900.0 / 200.0 / 450.0" in text  # the ceiling's from its CPU % and rate
    assert "by round" not in text  # results from before the rounds: no empty per-round column or rows


def test_h2load_parse():
    from bench import h2load

    out = """finished in 3.00s, 2487.33 req/s, 412.42KB/s
requests: 7462 total, 7562 started, 7462 done, 7460 succeeded, 2 failed, 2 errored, 0 timeout
status codes: 7460 2xx, 0 3xx, 0 4xx, 2 5xx
"""
    log = [f"{i}\t200\t{1000 + i}" for i in range(100)]
    r = h2load.parse(out, log)
    assert r.requests == 7460 and r.requests_per_s == 2487.33 and abs(r.mib_per_s - 412.42 / 1024) < 1e-9
    assert r.errors == {"failed": 2, "errored": 2, "non2xx": 2}
    assert r.p50_ms == 1.05 and r.p99_ms == 1.099
    assert "-m" in h2load.command("https://x/", 3, "L") and "--log-file=L" in h2load.command("https://x/", 3, "L")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)")
def test_varied_scenario_sends_a_distinct_target_per_request():
    """The l7-varied scenario's wrk script: every request a new target, so no remembered head
    (http/request.py `whole`) can serve two of them."""
    from bench.proxy import SCENARIOS, VARIED_LUA

    assert SCENARIOS["l7-varied"].varied and not SCENARIOS["l7-keepalive"].varied
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = wrk.run(f"http://127.0.0.1:{srv.server_port}/small", 1, connections=2, script=str(VARIED_LUA))
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.requests > 10 and len(seen) >= r.requests
    assert all(p.startswith("/small?n=") for p in seen)
    assert len(set(seen)) == len(seen)  # one wrk thread (-t1): one counter, every target distinct
