"""Micro-benchmark of the HTTP head layer: ns per head to parse and to re-serialise.

`python -m bench.http_parse [--callgrind] [--pure] [--only CASE]`

Owns the typical heads the proxy sees (wrk's two-line GET, a browser's GET with cookies,
nginx's response) and two measures of what `buddylb.http` costs per head:

- wall clock: ns per operation, the best of several timed repeats (noisy on a shared
  machine; compare within one run);
- `--callgrind`: instructions per operation under `valgrind --tool=callgrind`: the same
  script runs a case N and 2N times and the difference is divided by N, so interpreter
  start-up and imports cancel out. Robust when other work shares the machine.

`--pure` sets BUDDYLB_PURE=1 for the measured process (the uncompiled modules); the
default measures whatever `buddylb.http` loads (compiled when built). `--compare` runs
both and prints the ratio. It only ever measures; nothing here is a pass/fail gate.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable

WRK_GET = b"GET /small.html HTTP/1.1\r\nHost: 127.0.0.100:41000\r\n\r\n"
WRK_CLOSE = b"GET /small.html HTTP/1.1\r\nHost: 127.0.0.100:41000\r\nConnection: close\r\n\r\n"
BROWSER_GET = (
    b"GET /catalog/item?id=1234&ref=home HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    b"sec-ch-ua-mobile: ?0\r\n"
    b"sec-ch-ua-platform: \"Linux\"\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Referer: https://shop.example.com/\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    b"Cookie: BUDDYLB=AbCdEf0123456789.x1y2; session=9f8e7d6c5b4a; theme=dark\r\n"
    b"\r\n")
NGINX_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Tue, 01 Dec 2026 11:30:00 GMT\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: 612\r\n"
    b"Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b"ETag: \"674c3c80-264\"\r\n"
    b"X-Backend: lnx1\r\n"
    b"Accept-Ranges: bytes\r\n"
    b"\r\n") + b"x" * 612
XFF = [(b"x-forwarded-for", b"127.0.0.1"), (b"x-forwarded-proto", b"http")]


def cases() -> dict[str, Callable[[], object]]:
    """name -> one operation; each closure does exactly what the proxy does per head."""
    from buddylb.http.request import RequestParser, serialize_request_head
    from buddylb.http.response import ResponseParser, serialize_response_head

    def parse_request(data: bytes) -> Callable[[], object]:
        return lambda: RequestParser().feed(data)

    def serialize_request(data: bytes) -> Callable[[], object]:
        head = RequestParser().feed(data)[0]
        return lambda: serialize_request_head(head, XFF)  # type: ignore[arg-type]

    def parse_response() -> object:
        return ResponseParser(b"GET").feed(NGINX_RESPONSE)

    rhead = ResponseParser(b"GET").feed(NGINX_RESPONSE)[0]
    return {
        "parse wrk GET": parse_request(WRK_GET),
        "parse wrk GET, Connection: close": parse_request(WRK_CLOSE),
        "parse browser GET (16 fields)": parse_request(BROWSER_GET),
        "serialize wrk GET + XFF": serialize_request(WRK_GET),
        "serialize browser GET + XFF": serialize_request(BROWSER_GET),
        "parse nginx response + body": parse_response,
        "serialize nginx response": lambda: serialize_response_head(rhead),  # type: ignore[arg-type]
    }


def implementation() -> str:
    from buddylb.http import framing
    return "compiled" if framing.__file__.endswith((".so", ".pyd")) else "pure Python"


def wall(names: list[str], repeats: int = 7, budget_s: float = 0.2) -> dict[str, float]:
    """ns per operation: the best of `repeats` timed loops of about `budget_s` each."""
    out = {}
    table = cases()
    for name in names:
        op = table[name]
        n = 1
        while True:  # calibrate the loop count
            t0 = time.perf_counter_ns()
            for _ in range(n):
                op()
            if time.perf_counter_ns() - t0 > budget_s * 1e8 or n > 1 << 22:
                break
            n *= 2
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                op()
            best = min(best, (time.perf_counter_ns() - t0) / n)
        out[name] = best
    return out


def _loop(name: str, n: int) -> None:
    op = cases()[name]
    op()  # warm caches the same way whatever n is
    for _ in range(n):
        op()


def _callgrind_total(name: str, n: int, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="buddylb-cg-") as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
               "bench.http_parse", "--loop", name, str(n)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        m = re.search(r"Collected : (\d+)", proc.stderr)
        if proc.returncode or not m:
            raise RuntimeError(f"callgrind failed for {name!r}: {proc.stderr[-800:]}")
        return int(m.group(1))


def callgrind(names: list[str], pure: bool, n: int = 2000) -> dict[str, float]:
    """Instructions per operation: (I(2n) - I(n)) / n."""
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.http_parse: --callgrind needs valgrind")
    env = dict(os.environ, BUDDYLB_PURE="1" if pure else os.environ.get("BUDDYLB_PURE", ""))
    return {name: (_callgrind_total(name, 2 * n, env) - _callgrind_total(name, n, env)) / n for name in names}


def _measure_in_child(names: list[str], pure: bool, use_callgrind: bool) -> tuple[str, dict[str, float]]:
    env = dict(os.environ, BUDDYLB_PURE="1" if pure else "")
    cmd = [sys.executable, "-m", "bench.http_parse", "--json", *sum((["--only", n] for n in names), [])]
    if use_callgrind:
        cmd.append("--callgrind")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=True)
    data = json.loads(proc.stdout)
    return data["implementation"], data["figures"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.http_parse", description=__doc__.splitlines()[0])
    ap.add_argument("--callgrind", action="store_true", help="instructions per operation (valgrind)")
    ap.add_argument("--pure", action="store_true", help="measure the uncompiled modules (BUDDYLB_PURE=1)")
    ap.add_argument("--compare", action="store_true", help="compiled and pure side by side")
    ap.add_argument("--only", action="append", help="a case name (repeatable)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--loop", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pure:
        os.environ["BUDDYLB_PURE"] = "1"
    if args.loop:
        _loop(args.loop[0], int(args.loop[1]))
        return 0
    names = args.only or list(cases())
    unit = "instructions" if args.callgrind else "ns"
    if args.compare:
        impl_a, a = _measure_in_child(names, False, args.callgrind)
        impl_b, b = _measure_in_child(names, True, args.callgrind)
        print(f"{'case':40} {impl_a + ' ' + unit:>22} {impl_b + ' ' + unit:>24} {'ratio':>7}")
        for name in names:
            print(f"{name:40} {a[name]:22,.0f} {b[name]:24,.0f} {b[name] / a[name]:6.2f}x")
        return 0
    figures = callgrind(names, args.pure) if args.callgrind else wall(names)
    if args.json:
        print(json.dumps({"implementation": implementation(), "figures": figures}))
        return 0
    print(f"buddylb.http: {implementation()}; {unit} per operation")
    for name in names:
        print(f"{name:40} {figures[name]:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
