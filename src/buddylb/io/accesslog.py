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

from buddylb.io.record import FlowRecord
from buddylb.service.syslog import SyslogSink, is_syslog_target

log = logging.getLogger("buddylb.accesslog")



_stamp: list = [-1, ""]  # (second, its text): one strftime per second, not per line


def format_text(r: FlowRecord) -> str:
    sec = int(r.ts)
    if sec != _stamp[0]:
        _stamp[0], _stamp[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(sec))
    req = f' "{r.request}"' if r.method else ""
    rserver = f"{r.rserver}:{r.port}" if r.rserver else "-"
    return (f"{_stamp[1]} {r.client or '-'} vip={r.vip or '-'} class={r.class_name or '-'} "
            f"farm={r.farm or '-'} rserver={rserver} outcome={r.outcome or '-'} "
            f"status={r.status}{req} in={r.bytes_in} out={r.bytes_out} dur={r.duration_s}s")


def format_json(r: FlowRecord) -> str:
    return json.dumps(r.as_dict(), default=str)


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
        self.fmt: Callable[[FlowRecord], str] = format_json if fmt == "json" else format_text
        self.buffer: list[str] = []
        self.handle: asyncio.TimerHandle | None = None

    def __call__(self, record: FlowRecord) -> None:
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
