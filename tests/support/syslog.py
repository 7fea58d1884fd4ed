"""A test syslog receiver (UDP or Unix datagram) and an RFC 5424 frame parser that
checks the grammar of RFC 5424 §6 rather than trusting our own formatter."""
from __future__ import annotations

import datetime
import re
import select
import socket
import time
from dataclasses import dataclass

_FRAME = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<ts>-|\S+) (?P<host>[\x21-\x7e]{1,255}) "
    rb"(?P<app>[\x21-\x7e]{1,48}) (?P<procid>[\x21-\x7e]{1,128}) (?P<msgid>[\x21-\x7e]{1,32}) "
    rb"(?P<sd>-|(?:\[[^\]]*\])+)(?: (?P<msg>.*))?\Z", re.S)
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")


@dataclass
class Frame:
    facility: int
    severity: int
    version: int
    timestamp: datetime.datetime
    hostname: str
    app: str
    procid: str
    msgid: str
    sd: str
    msg: str


def parse_rfc5424(data: bytes) -> Frame:
    m = _FRAME.match(data)
    assert m, f"not an RFC 5424 frame: {data!r}"
    pri = int(m["pri"])
    assert pri <= 191, pri
    ts = m["ts"].decode()
    assert _TS.match(ts), f"TIMESTAMP is not RFC 3339 as RFC 5424 §6.2.3 wants: {ts}"
    msg = m["msg"] or b""
    assert not msg.startswith(b"\xef\xbb\xbf")
    return Frame(pri // 8, pri % 8, int(m["version"]),
                 datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")), m["host"].decode(),
                 m["app"].decode(), m["procid"].decode(), m["msgid"].decode(), m["sd"].decode(), msg.decode())


class SyslogReceiver:
    def __init__(self, path: str | None = None) -> None:
        """UDP on 127.0.0.1 (any free port) when `path` is None, else a Unix datagram socket."""
        if path is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.target = f"syslog:127.0.0.1:{self.sock.getsockname()[1]}"
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.target = f"syslog:{path}"
        self.frames: list[bytes] = []

    def wait(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            self.frames.append(self.sock.recv(65536))
        return self.frames

    def close(self) -> None:
        self.sock.close()
