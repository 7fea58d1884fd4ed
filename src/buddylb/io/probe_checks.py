"""One health check on the wire, per probe type (SPEC §2.1, ACE's probe semantics).

`check()` returns a `Result`: passed, failed (the server's fault: refused, timed out,
wrong status, regex not found) or `local` (the check could not run here: out of
descriptors or buffers, no ICMP socket allowed).  A local result never fails a server:
`core.health.ProbeTarget.record_local` keeps the verdict as it was.

- tcp: connect within `open`; with `expect regex`, read the banner within `receive`.
- http / https: `request method get|head url PATH` with Host (the rserver's address, or
  the host of an absolute URL) and the probe's headers; the status must fall in one of
  the `expect status` ranges (default 200-299); `expect regex R [offset N]` is searched
  in the body from offset N; all within `receive` (default 10 s).  https does not verify
  the server's certificate (the ACE does not either); `ssl version` sets the lowest
  version offered, `ssl cipher` the suites.
- icmp: an echo request through a ping socket (`net.ipv4.ping_group_range`), else a raw
  socket (CAP_NET_RAW); when neither is allowed the result is local, with the fix.
`connection term forced` resets the connection after the check instead of closing it.
A probe of a `send-proxy` farm without its own `port` opens with a PROXY header, as
HAProxy's checks do (v2: LOCAL; v1: this connection's own addresses), before TLS.
The connect function is injectable (tests make local failures happen deterministically).
"""
from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Awaitable, Callable

from buddylb.config.model import Probe
from buddylb.proxyproto import build_local, build_v1

LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
MAX_ANSWER = 64 * 1024  # bytes read when a regex must be found in the answer
Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    detail: str
    local: bool = False  # could not run for a local reason: no verdict


def _local_or_failed(exc: BaseException, what: str) -> Result:
    if isinstance(exc, OSError) and exc.errno in LOCAL_ERRNOS:
        return Result(False, f"{what}: not run here ({os.strerror(exc.errno)})", local=True)
    return Result(False, f"{what}: {str(exc) or 'timeout'}")


async def check(probe: Probe, address: str, port: int, connect: Connect = asyncio.open_connection,
                send_proxy: int = 0) -> Result:
    if probe.kind == "icmp":
        return await check_icmp(address, probe.receive_timeout_s)
    tls = _client_context(probe) if probe.kind == "https" else None
    try:
        if send_proxy:
            reader, writer = await asyncio.wait_for(_proxied(address, port, connect, send_proxy, tls),
                                                    probe.open_timeout_s)
        else:
            reader, writer = await asyncio.wait_for(
                connect(address, port, ssl=tls, server_hostname=address if tls else None) if tls
                else connect(address, port),
                probe.open_timeout_s,
            )
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
        return _local_or_failed(exc, "connect")
    try:
        if probe.kind == "tcp":
            if probe.expect_regex is None:
                return Result(True, "connected")
            data = await _read_some(reader, probe.receive_timeout_s, probe.expect_regex, probe.expect_offset)
            return _regex_result(probe, data, "answer")
        return await _http(probe, address, port, reader, writer)
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
        return _local_or_failed(exc, probe.kind)
    finally:
        if probe.forced_close:
            writer.transport.abort()
        else:
            writer.close()


async def _proxied(address: str, port: int, connect: Connect, version: int,
                   tls: ssl.SSLContext | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, send the PROXY header of a connection on our own behalf, then TLS if any:
    v2 LOCAL; v1 names this connection's own endpoints (proxy-protocol.txt §2.1: a
    health check SHOULD send a valid line, as some servers refuse UNKNOWN)."""
    reader, writer = await connect(address, port)
    if version == 2:
        writer.write(build_local(2))
    else:
        me, peer = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
        writer.write(build_v1(me[0], me[1], peer[0], peer[1]))
    if tls is not None:
        await writer.start_tls(tls, server_hostname=address)
    return reader, writer


def _client_context(probe: Probe) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a health check, as the ACE's: no certificate validation
    if probe.ssl_min_version is not None:
        ctx.minimum_version = getattr(ssl.TLSVersion, probe.ssl_min_version)
    if probe.ssl_ciphers:
        ctx.set_ciphers(":".join(probe.ssl_ciphers))
    return ctx


async def _http(probe: Probe, address: str, port: int, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> Result:
    host = probe.host or (f"[{address}]" if ":" in address else address)
    extra = "".join(f"{h.name}: {h.value}\r\n" for h in probe.headers if h.name.lower() != "host")
    named = next((h.value for h in probe.headers if h.name.lower() == "host"), None)
    writer.write(f"{probe.method} {probe.url} HTTP/1.1\r\nHost: {named or host}\r\n{extra}"
                 "Connection: close\r\n\r\n".encode("latin-1"))
    line = await asyncio.wait_for(reader.readline(), probe.receive_timeout_s)
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Result(False, "no HTTP status line")
    status = int(parts[1])
    if not any(lo <= status <= hi for lo, hi in probe.expect_ranges):
        return Result(False, f"status {status}")
    if probe.expect_regex is None or probe.method == "HEAD":
        return Result(True, f"status {status}")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), probe.receive_timeout_s)
    del head
    body = await _read_some(reader, probe.receive_timeout_s, probe.expect_regex, probe.expect_offset)
    return _regex_result(probe, body, f"status {status}, body")


async def _read_some(reader: asyncio.StreamReader, timeout: float, regex: str, offset: int) -> bytes:
    """Read until the regex is found past `offset`, EOF, MAX_ANSWER bytes or `timeout`."""
    pattern = re.compile(regex.encode("utf-8", "surrogateescape"))
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(data) < MAX_ANSWER:
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(MAX_ANSWER - len(data)), left)
        except asyncio.TimeoutError:
            break
        if not chunk:
            break
        data += chunk
        if pattern.search(data, offset):
            break
    return data


def _regex_result(probe: Probe, data: bytes, what: str) -> Result:
    assert probe.expect_regex is not None
    found = re.search(probe.expect_regex.encode("utf-8", "surrogateescape"), data[probe.expect_offset:]) is not None
    return Result(found, f"{what}: regex {'found' if found else 'not found'}")


# -- ICMP echo ---------------------------------------------------------------------------
_ICMP_NOT_ALLOWED = ("probe icmp cannot run: neither a ping socket (allow this group in "
                     "net.ipv4.ping_group_range) nor a raw socket (CAP_NET_RAW) is permitted")


def icmp_socket(family: int) -> tuple[socket.socket, bool]:
    """A ping socket (kernel-managed id, no IP header) or, failing that, a raw one."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), True
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


_sequence = [0]


async def check_icmp(address: str, timeout: float) -> Result:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock, ping = icmp_socket(family)
    except PermissionError:
        return Result(False, _ICMP_NOT_ALLOWED, local=True)
    except OSError as exc:
        return _local_or_failed(exc, "icmp")
    _sequence[0] = (_sequence[0] + 1) & 0xFFFF
    ident, seq = os.getpid() & 0xFFFF, _sequence[0]
    request_type, reply_type = (8, 0) if family == socket.AF_INET else (128, 129)
    payload = b"buddylb-probe"
    header = struct.pack("!BBHHH", request_type, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", request_type, 0, _checksum(header + payload), ident, seq) + payload
    loop = asyncio.get_running_loop()
    try:
        sock.setblocking(False)
        sock.connect((address, 0))  # no handshake on ICMP: immediate, and no resolver involved
        await loop.sock_sendall(sock, packet)
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            data = await asyncio.wait_for(loop.sock_recv(sock, 2048), left)
            if not ping and family == socket.AF_INET:
                data = data[(data[0] & 0x0F) * 4:]  # a raw IPv4 socket delivers the IP header
            if len(data) >= 8:
                kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
                if kind == reply_type and rseq == seq and (ping or rid == ident):
                    return Result(True, "echo reply")
        return Result(False, "icmp: timeout")
    except (OSError, asyncio.TimeoutError) as exc:
        return _local_or_failed(exc, "icmp")
    finally:
        sock.close()
