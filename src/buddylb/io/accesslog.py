"""The access log: one line per L4 connection or L7 request (issue 3 item 7).

Plain text by default, JSON lines with `--access-log-format json`; stdout by default,
a file with `--access-log PATH`, nothing with `off` (SPEC §4).  Writes are buffered and
flushed by the event loop every 200 ms so logging never costs a syscall per request.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import IO, Callable

FIELDS = ("client", "vip", "class", "farm", "rserver", "outcome", "status", "bytes_in", "bytes_out", "duration_s")


def format_text(r: dict) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.get("ts", time.time())))
    req = f' "{r["request"]}"' if r.get("request") else ""
    return (f"{ts} {r.get('client') or '-'} vip={r.get('vip') or '-'} class={r.get('class') or '-'} "
            f"farm={r.get('farm') or '-'} rserver={r.get('rserver') or '-'} outcome={r.get('outcome') or '-'} "
            f"status={r.get('status')}{req} in={r.get('bytes_in', 0)} out={r.get('bytes_out', 0)} "
            f"dur={r.get('duration_s', 0)}s")


class AccessLog:
    def __init__(self, target: str = "-", fmt: str = "text") -> None:
        self.enabled = target != "off"
        self.stream: IO[str] | None = None
        if self.enabled:
            self.stream = sys.stdout if target == "-" else open(target, "a", buffering=1 << 16)  # noqa: SIM115
        self.fmt: Callable[[dict], str] = (lambda r: json.dumps(r, default=str)) if fmt == "json" else format_text
        self.buffer: list[str] = []
        self.handle: asyncio.TimerHandle | None = None

    def __call__(self, record: dict) -> None:
        if not self.enabled:
            return
        self.buffer.append(self.fmt(record))
        if self.handle is None:
            try:
                self.handle = asyncio.get_running_loop().call_later(0.2, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self.handle = None
        if self.buffer and self.stream is not None:
            self.stream.write("\n".join(self.buffer) + "\n")
            self.stream.flush()
        self.buffer.clear()

    def close(self) -> None:
        self.flush()
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()
