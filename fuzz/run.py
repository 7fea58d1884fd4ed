"""`make fuzz`: run each atheris target for a bounded time, seeded from the corpus.

    python -m fuzz.run [--seconds 60] [--only config|http|proxy]

Seeds: the shipped example configurations, the malformed-request corpus of the tests,
and PROXY protocol headers (v1, v2 with TLVs and CRC32C, LOCAL, UNKNOWN).
Crashes are written by libFuzzer into fuzz/out/<target>/ (crash-* files).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "out"


def seeds(target: str) -> list[bytes]:
    if target == "config":
        return [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.cfg"))]
    if target == "proxy":
        from buddylb.proxyproto import build_local, build_v1, build_v2

        made = [build_v1("192.0.2.1", 1, "198.51.100.2", 80), build_v1("2001:db8::1", 65535, "2001:db8::2", 0),
                build_v2("192.0.2.1", 1, "198.51.100.2", 80, tlvs=((0x02, b"example.com"),), crc=True),
                build_v2("2001:db8::1", 2, "2001:db8::2", 443), build_local(1), build_local(2)]
        return [b"\x03" + m + b"GET / HTTP/1.1\r\n" for m in made]
    sys.path.insert(0, str(ROOT))
    from tests.http.test_smuggling_corpus import CORPUS  # the malformed-request corpus of the tests

    valid = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"]
    return [b"\x03" + raw for raw in [*valid, *(case.raw for case in CORPUS)]]


def child(target: str, seconds: int) -> None:
    import atheris

    with atheris.instrument_imports():
        from fuzz import targets
    fn = getattr(targets, f"{target}_target")
    corpus = OUT / target / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds(target)):
        (corpus / f"seed-{i}").write_bytes(s)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-artifact_prefix={OUT / target}/",
                   "-rss_limit_mb=2048"], fn)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--only", choices=["config", "http", "proxy"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return 0
    worst = 0
    for target in [args.only] if args.only else ["config", "http", "proxy"]:
        print(f"fuzzing {target} for {args.seconds} s", flush=True)
        code = subprocess.call([sys.executable, "-m", "fuzz.run", "--child", target, "--seconds", str(args.seconds)],
                               cwd=ROOT)
        print(f"{target}: {'no crash' if code == 0 else f'CRASH (exit {code}), see {OUT / target}'}", flush=True)
        worst = worst or code
    return worst


if __name__ == "__main__":
    sys.exit(main())
