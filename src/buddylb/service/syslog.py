"""The access log as syslog messages: RFC 5424 frames over a Unix datagram socket
(`/dev/log` by default) or UDP (RFC 5426), one record per datagram.

Owns the `syslog[:ADDR]` target syntax, the frame, and the socket.  It never blocks and
never raises into the data path: a datagram the daemon cannot take now (full queue,
daemon restarting, no listener) is counted in `dropped` and logged once, as syslog(3)
itself drops.  The frame (RFC 5424 §6):

    <134>1 2026-12-01T11:31:01.123456Z HOSTNAME buddylb PID access - MSG

PRI 134 = facility local0 (16) * 8 + severity info (6).  MSG is the access-log line
(text or JSON) as UTF-8 without a BOM (RFC 5424 §6.4 MSG-ANY).  A frame longer than the
transport's limit is cut at a character boundary: 2048 octets over UDP (RFC 5426 §3.2),
8192 over a Unix socket.
"""
from __future__ import annotations

import datetime
import logging
import os
import socket
import stat
from dataclasses import dataclass

from buddylb.errors import LbError

log = logging.getLogger("buddylb.syslog")

FACILITY_LOCAL0 = 16
SEVERITY_INFO = 6
PRI = FACILITY_LOCAL0 * 8 + SEVERITY_INFO
DEFAULT_SOCKET = "/dev/log"
DEFAULT_PORT = 514
LIMIT_UDP = 2048
LIMIT_UNIX = 8192


def is_syslog_target(target: str) -> bool:
    return target == "syslog" or target.startswith("syslog:")


@dataclass(frozen=True, slots=True)
class SyslogAddress:
    family: int  # AF_UNIX or AF_INET / AF_INET6
    address: str | tuple  # a path, or a sockaddr for sendto


def parse_target(target: str) -> SyslogAddress:
    """`syslog` -> /dev/log; `syslog:/path`; `syslog:HOST[:PORT]`, `syslog:[V6]:PORT` (UDP)."""
    rest = target[len("syslog:"):] if target.startswith("syslog:") else ""
    if not rest:
        return SyslogAddress(socket.AF_UNIX, DEFAULT_SOCKET)
    if rest.startswith("/"):
        return SyslogAddress(socket.AF_UNIX, rest)
    host, port_text = rest, str(DEFAULT_PORT)
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail:
            port_text = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise LbError(f'--access-log {target}: write syslog, syslog:/dev/log, syslog:HOST:PORT or '
                      f'syslog:[IPv6]:PORT')
    try:
        info = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        raise LbError(f"--access-log {target}: cannot resolve {host}: {exc}") from exc
    return SyslogAddress(info[0], info[4])


def timestamp(when: float) -> str:
    """RFC 5424 §6.2.3 TIMESTAMP: RFC 3339, UTC, microseconds."""
    t = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header_word(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces (RFC 5424 §6), else '-'."""
    word = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return word or "-"


def frame(message: str, when: float, hostname: str, pid: int, limit: int, msgid: str = "access") -> bytes:
    head = (f"<{PRI}>1 {timestamp(when)} {header_word(hostname, 255)} buddylb {pid} "
            f"{header_word(msgid, 32)} - ").encode()
    body = message.encode("utf-8", "replace")
    if len(head) + len(body) > limit:
        body = body[: max(0, limit - len(head))].decode("utf-8", "ignore").encode()
    return head + body


class SyslogSink:
    """Sends access-log lines to one syslog address; see the module header for the rules."""

    def __init__(self, target: str) -> None:
        self.addr = parse_target(target)
        if self.addr.family == socket.AF_UNIX:
            path = str(self.addr.address)
            try:
                is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
            except OSError:
                is_socket = False
            if not is_socket:
                raise LbError(f"--access-log {target}: {path} is not a socket; start a syslog daemon "
                              f"(rsyslog, systemd-journald) or write syslog:HOST:PORT")
        self.limit = LIMIT_UNIX if self.addr.family == socket.AF_UNIX else LIMIT_UDP
        self.sock = socket.socket(self.addr.family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setblocking(False)
        self.hostname = socket.gethostname()
        self.sent = 0
        self.dropped = 0

    def send(self, lines: list[str], when: float) -> None:
        pid = os.getpid()  # a --workers child sends under its own pid
        for line in lines:
            try:
                self.sock.sendto(frame(line, when, self.hostname, pid, self.limit), self.addr.address)
                self.sent += 1
            except OSError as exc:
                if not self.dropped:
                    log.warning("access log: syslog %s refused a message (%s); dropping until it accepts",
                                self.addr.address, exc)
                self.dropped += 1

    def close(self) -> None:
        self.sock.close()
