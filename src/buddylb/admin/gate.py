"""The admin API's front door: every request passes here before any endpoint sees it.

Owns the connection and request rules of SPEC §4 / issue 13 items 3-4, so an endpoint
added later (the dashboard, a new command) gets them for free:

- Connections: at most `Limits.max_connections` open; a new one beyond the cap closes
  the connection idle the longest (no request in progress), or is itself refused with
  503 when every slot is busy, so an idle flood never locks the operator out and never
  holds more than the cap of descriptors.
- Time: a request head must arrive within `header_timeout_s` of its first byte, its body
  within `body_timeout_s` of the head (deadlines, not per-byte timers: a slowloris gains
  nothing); an idle keep-alive connection closes after `idle_timeout_s`. A late request
  gets 408.
- Size: a body larger than `max_body` gets 413, decided from Content-Length before
  reading any of it (`Content-Length: 999999999999999999` is answered at once).
- Browsers: `Host` must name the admin address or `localhost` (DNS rebinding); a request
  whose `Origin` is present and is not the admin's own origin gets 403; a mutation
  (POST) needs `Content-Type: application/json` (415), which no HTML form can send and
  which makes a cross-site `fetch` preflight, which we never grant.

Every refusal is a JSON 4xx (`{"error": ...}`) followed by a lingering close. This
module never decides what a request means: `AdminServer.dispatch` does.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Awaitable, Callable

from buddylb.errors import ProtocolError
from buddylb.http.request import BodyChunk, EndOfMessage, RequestHead, RequestParser
from buddylb.io.descriptors import ADMIN_CONNECTIONS

log = logging.getLogger("buddylb.admin")
LINGER_S = 1.0  # after an error reply: drain what the client still sends, then close


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout_s: float = 5.0
    body_timeout_s: float = 10.0
    idle_timeout_s: float = 15.0
    max_connections: int = ADMIN_CONNECTIONS  # kept in the descriptor budget's reserve
    max_body: int = 64 * 1024


class Refusal(Exception):
    """A request the gate (or an endpoint) answers with a 4xx; `close` ends the connection."""

    def __init__(self, status: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


def response(status: int, payload: bytes, ctype: bytes = b"application/json", close: bool = False,
             extra: tuple[bytes, ...] = ()) -> bytes:
    """`extra`: more header lines (the dashboard's Set-Cookie)."""
    lines = [b"HTTP/1.1 %d %s" % (status, HTTPStatus(status).phrase.encode()), b"content-type: " + ctype,
             b"content-length: %d" % len(payload), b"cache-control: no-store",
             b"x-content-type-options: nosniff", *extra]
    if close:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def json_response(status: int, data: Any, close: bool = False) -> bytes:
    return response(status, json.dumps(data, default=str).encode(), close=close)


def error(status: int, message: str, close: bool = False) -> bytes:
    return json_response(status, {"error": message}, close=close)


# -- request screening (Host, Origin, Content-Type) ------------------------------------------

def _split_host(value: str) -> tuple[str, str | None]:
    """`host[:port]` -> (host lowercased without brackets, port or None)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host.lower(), rest[1:] if rest.startswith(":") else None
    host, sep, port = value.rpartition(":")
    return (host.lower(), port) if sep else (value.lower(), None)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class Screen:
    """The Host / Origin / Content-Type rules for one admin address."""

    def __init__(self, host: str, port: int) -> None:
        self.port = str(port)
        self.names = {host.lower(), "localhost"}
        # bound to every address: a client names us by whichever IP it reached us on; an
        # IP literal cannot be rebound by DNS, so any IP is our own name then
        self.any_ip = host in ("0.0.0.0", "::", "")

    def host_ok(self, value: str) -> bool:
        host, port = _split_host(value)
        if port is not None and port != self.port:
            return False
        return host in self.names or (self.any_ip and _is_ip(host))

    def check(self, head: RequestHead) -> None:
        """Raise Refusal unless `head` may reach an endpoint."""
        host = head.host.decode("latin-1")
        if not host or not self.host_ok(host):
            raise Refusal(421, f'Host "{host}" is not this admin API; use its address or localhost '
                               "(requests for other names are refused: DNS rebinding)", close=True)
        origin = head.header(b"origin")
        if origin is not None and origin.decode("latin-1").lower().rstrip("/") != f"http://{host.lower()}":
            raise Refusal(403, "cross-origin requests are refused: Origin "
                               f'"{origin.decode("latin-1")}" is not http://{host}', close=True)
        if head.method == b"POST":
            ctype = (head.header(b"content-type") or b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                raise Refusal(415, "mutations need Content-Type: application/json", close=True)
        elif head.method not in (b"GET", b"HEAD"):
            raise Refusal(405, f"method {head.method.decode('latin-1')} is not served; use GET or POST", close=True)


# -- the connection ----------------------------------------------------------------------------

Dispatch = Callable[[RequestHead, bytes], Awaitable[bytes]]


class Gate:
    """The set of open admin connections, its cap, and the shared rules."""

    def __init__(self, limits: Limits, screen: Screen, dispatch: Dispatch) -> None:
        self.limits = limits
        self.screen = screen
        self.dispatch = dispatch
        self.open: dict["AdminConnection", None] = {}  # insertion order = oldest first
        self.refused: dict[int, int] = {}  # status -> count, exported as a metric

    def count(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1

    def admit(self, conn: "AdminConnection") -> bool:
        if len(self.open) >= self.limits.max_connections:
            victim = next((c for c in self.open if c.idle), None)
            if victim is None:
                return False
            victim.close()
        self.open[conn] = None
        return True

    def factory(self) -> "AdminConnection":
        return AdminConnection(self)

    def close_all(self) -> None:
        for c in list(self.open):
            c.close()


class AdminConnection(asyncio.Protocol):
    """One admin client: reads a request under the deadlines, asks the gate's dispatch for
    the answer, one request at a time (pipelined requests wait their turn, in order)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.head: RequestHead | None = None
        self.body = bytearray()
        self.pending: deque = deque()  # events after a complete request, kept for their turn
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None
        self.idle = True  # no byte of a request received yet
        self.done = False
        self.eof = False

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.gate.admit(self):
            self.gate.count(503)
            self.transport.write(error(503, "too many admin connections; try again", close=True))
            self.transport.close()
            self.done = True
            return
        self._arm(self.gate.limits.idle_timeout_s, self._idle_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        self.gate.open.pop(self, None)
        self._disarm()
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.done:
            return  # lingering after an error: discard
        if self.idle:
            self.idle = False
            self._arm(self.gate.limits.header_timeout_s, self._late)
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self._refuse(exc.status, str(exc) or HTTPStatus(exc.status).phrase)
            return
        self.pending.extend(events)
        if self.task is None:
            self._advance()

    def eof_received(self) -> bool | None:
        self.eof = True
        if self.task is None:
            self.close()  # nothing in progress, and a partial request can never complete
        return True  # half-closed: a request in progress is still answered, then we close

    # -- the request pipeline
    def _advance(self) -> None:
        """Consume events until a request is complete (then dispatch it) or none are left."""
        limits = self.gate.limits
        while self.pending and not self.done:
            ev = self.pending.popleft()
            if isinstance(ev, RequestHead):
                self.idle = False
                if ev.content_length is not None and ev.content_length > limits.max_body:
                    self._refuse(413, f"request body of {ev.content_length} bytes is over the "
                                      f"{limits.max_body} byte limit")
                    return
                self.head, self.body = ev, bytearray()
                self._arm(limits.body_timeout_s, self._late)
            elif isinstance(ev, BodyChunk):
                self.body += ev.data
                if len(self.body) > limits.max_body:
                    self._refuse(413, f"request body is over the {limits.max_body} byte limit")
                    return
            elif isinstance(ev, EndOfMessage) and self.head is not None:
                head, body = self.head, bytes(self.body)
                self.head, self.body = None, bytearray()
                self._disarm()
                assert self.transport is not None
                self.transport.pause_reading()
                self.task = asyncio.get_running_loop().create_task(self._answer(head, body))
                return

    async def _answer(self, head: RequestHead, body: bytes) -> None:
        try:
            self.gate.screen.check(head)
            out = await self.gate.dispatch(head, body)
            close = not head.keep_alive
        except Refusal as exc:
            self.gate.count(exc.status)
            out, close = error(exc.status, str(exc), close=exc.close), exc.close or not head.keep_alive
        except Exception:  # a bug must still answer, and never leave a task exception behind
            log.exception("admin API: %s %s failed", head.method.decode("latin-1"), head.target.decode("latin-1"))
            out, close = error(500, "internal error; see buddylb's log", close=True), True
        self.task = None
        close = close or self.eof
        if self.done or self.transport is None or self.transport.is_closing():
            return
        if head.method == b"HEAD":
            out = out[:out.index(b"\r\n\r\n") + 4]
        self.transport.write(out)
        if close:
            self._linger()
            return
        self.idle = not self.pending
        self._arm(self.gate.limits.idle_timeout_s if self.idle else self.gate.limits.header_timeout_s,
                  self._idle_expired if self.idle else self._late)
        self.transport.resume_reading()
        self._advance()

    # -- timers and endings
    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(delay, callback)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _idle_expired(self) -> None:
        self.close()

    def _late(self) -> None:
        self._refuse(408, "request not received in time")

    def _refuse(self, status: int, message: str) -> None:
        self.gate.count(status)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(error(status, message, close=True))
        self._linger()

    def _linger(self) -> None:
        """Stop reading requests, send FIN, discard what still arrives, close soon (SPEC §5)."""
        self.done = True
        self.pending.clear()
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.can_write_eof():
            t.write_eof()
        t.resume_reading()
        self._arm(LINGER_S, self.close)

    def close(self) -> None:
        self.done = True
        self._disarm()
        self.gate.open.pop(self, None)
        if self.transport is not None:
            self.transport.close()
