"""The access log: one line per L4 connection or L7 request (issue 3 item 7).

Plain text by default, JSON lines with `--access-log-format json` (one object per line,
the schema is in the README); stdout by default, a file with `--access-log PATH`
(reopened by `reopen()` on SIGUSR1, for logrotate), syslog with `syslog[:ADDR]`
(service/syslog.py), nothing with `off` (SPEC §4).  Writes are buffered and flushed by
the event loop every 200 ms so logging never costs a syscall per request.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import IO, Callable

from buddylb.service.syslog import SyslogSink, is_syslog_target

log = logging.getLogger("buddylb.accesslog")

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
        self.target = target
        self.stream: IO[str] | None = None
        self.syslog: SyslogSink | None = None
        if self.enabled and is_syslog_target(target):
            self.syslog = SyslogSink(target)
        elif self.enabled:
            self.stream = sys.stdout if target == "-" else self._open()
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

    def _open(self) -> IO[str]:
        return open(self.target, "a", buffering=1 << 16)  # noqa: SIM115

    @property
    def is_file(self) -> bool:
        return self.stream is not None and self.stream is not sys.stdout

    def flush(self) -> None:
        self.handle = None
        if self.buffer and self.syslog is not None:
            self.syslog.send(self.buffer, time.time())
        elif self.buffer and self.stream is not None:
            self.stream.write("\n".join(self.buffer) + "\n")
            self.stream.flush()
        self.buffer.clear()

    def reopen(self) -> None:
        """SIGUSR1 (logrotate's postrotate): flush to the old file, continue in a new one at
        the same path.  If the path cannot be opened, keep writing to the old file."""
        self.flush()
        if not self.is_file:
            return
        try:
            fresh = self._open()
        except OSError as exc:
            log.error("access log: cannot reopen %s (%s); still writing to the file already open", self.target, exc)
            return
        old, self.stream = self.stream, fresh
        old.close()  # type: ignore[union-attr]
        log.info("access log reopened: %s", self.target)

    def close(self) -> None:
        self.flush()
        if self.is_file:
            self.stream.close()  # type: ignore[union-attr]
        if self.syslog is not None:
            self.syslog.close()
