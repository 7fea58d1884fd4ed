"""The L7 (HTTP/1.1) data path: every request is classified and decided on its own.

Theory of operation
- Bytes from the client go through `http.request.RequestParser`, the validation layer
  (SPEC §5): nothing reaches a server before its head, and the body bytes that came
  with it, passed.  Events are queued; one exchange (request + response) runs at a
  time per client connection, pipelined requests wait in the queue with the client's
  reading paused.
- Each request head -> `Balancer.decide()` (class-maps, stickiness, buddy resolution)
  -> a pooled keep-alive server connection to the chosen rserver:port (PAT).  The head is
  re-serialised (hop-by-hop fields dropped, X-Forwarded-For / -Proto set by us); bodies
  stream both ways without buffering whole bodies, with flow control.
- Failures (SPEC §5): connect refused -> one retry on another rserver, then 502; a pooled
  connection that dies before any response byte of a body-less request -> one retry on
  a fresh connection; server dies mid-response -> the client gets what was sent and a
  close; no response within `timeout server` -> 504; no server available -> 503.
- Any error response is followed by a lingering close: stop parsing, shut our side
  down, discard what the client still sends for a moment, then close.

Timers (SPEC §5), one per client connection, `timer_kind` says which runs:
- `http-request`: from the first byte of a request head (or the accept) until the head
  is complete; expiry -> 408.  It is never restarted by more bytes (slowloris).
- `keep-alive`: between a response and the next request's first byte; expiry -> a
  silent close.
- `exchange`: while a request is in flight.  `timeout client` runs while we wait for
  the client (request body bytes not arriving while we read, or our response bytes not
  being read: writing is paused); `timeout server` while we wait for the server (we are
  attached and reading it).  Connecting and queueing have their own deadlines
  (`timeout connect`, `timeout queue`).  Expiry before the response started -> 408
  (client) or 504 (server); after it -> both connections are aborted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from buddylb.core.decide import Decision, Flow, learn, reroute
from buddylb.core.keys import _is_trusted
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.errors import ProtocolError
from buddylb.http.request import (
    BodyChunk,
    EndOfMessage,
    Framing,
    RequestHead,
    RequestParser,
    encode_chunk,
    encode_last_chunk,
    serialize_request_head,
)
from buddylb.http.response import ResponseHead, ResponseParser, error_response, serialize_response_head
from buddylb.io.lograte import RATE, note_connect_failure
from buddylb.io.pool import ServerConn

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.l7")
LINGER_S = 1.0
_CLOSE = (b"connection", b"close")


class _HeaderView:
    """Lazy str view of a request's headers for classification and header stickiness."""

    __slots__ = ("head",)

    def __init__(self, head: RequestHead) -> None:
        self.head = head

    def get(self, name: str, default: str | None = None) -> str | None:
        v = self.head.header(name.encode("latin-1"))
        return default if v is None else v.decode("latin-1")


class _CookieView(_HeaderView):
    __slots__ = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        v = self.head.cookies().get(name.encode("latin-1"))
        return default if v is None else v.decode("latin-1")


class Exchange:
    """One request and its response."""

    __slots__ = ("head", "decision", "conn", "rparser", "body_sent", "request_done", "response_started",
                 "pending", "status", "bytes_in", "bytes_out", "started", "chunked_out", "close_after",
                 "retried_pooled")

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.decision: Decision | None = None
        self.conn: ServerConn | None = None
        self.rparser = ResponseParser(head.method)
        self.body_sent = False
        self.request_done = head.framing is Framing.NONE
        self.response_started = False
        self.pending: list[bytes] = []
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.time()
        self.chunked_out = False
        self.close_after = not head.keep_alive
        self.retried_pooled = False


class L7Client(asyncio.Protocol):
    def __init__(self, balancer: "Balancer", vip_key: tuple[str, int], tls_terminated: bool = False) -> None:
        self.balancer = balancer
        self.vip_key = vip_key
        self.tls = tls_terminated
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = RequestParser()
        self.queue: deque = deque()
        self.ex: Exchange | None = None
        self.snap: Snapshot | None = None
        self.vip: Vip | None = None
        self.peer = ""
        self.closing = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None  # armed at `timer_due` (<= deadline)
        self.timer_due = 0.0
        self.deadline = 0.0
        self.timer_kind = ""
        self.linger: asyncio.TimerHandle | None = None
        self.last_client = 0.0
        self.last_server = 0.0
        self.requests = 0
        self.paused = False  # we stopped reading the client (pipelining, back-pressure)
        self.write_paused = False  # the client stopped reading us (its buffer is full)
        self.client_eof = False

    # -- connection --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.balancer.flows.add(self)
        snap = self.snap = self.balancer.snapshot
        self.vip = snap.vips.get(self.vip_key)
        peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        self.peer = peer[0]
        if self.vip is None or not self.vip.inservice:
            self._error(503, "VIP out of service")
            return
        self._set_timer(snap.timeouts["http-request"], "http-request")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.balancer.flows.discard(self)
        self._cancel_timer()
        ex = self.ex
        if ex is not None:
            if ex.conn is not None:
                ex.conn.abort()
                ex.conn = None
            self._finish(ex, ex.status or 499)

    def abort(self) -> None:
        if self.ex is not None and self.ex.conn is not None:
            self.ex.conn.abort()
        self.transport.abort()

    # -- client bytes ------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # lingering close: discard
        self.last_client = self.loop.time()
        if self.timer_kind == "keep-alive":
            assert self.snap is not None
            self._set_timer(self.snap.timeouts["http-request"], "http-request")
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        self.queue.extend(events)
        self._pump()
        if self.parser.error is not None and not self.closing:
            self._protocol_error(self.parser.error)

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.closing or self.closed:
            return False
        try:
            self.parser.feed_eof()
        except ProtocolError as exc:
            self._protocol_error(exc)
            return True
        if self.ex is None and not self.queue:
            return False  # a clean close between requests
        return True  # finish the exchange in flight, then close
        # (the half-closed client still reads our response)

    def _protocol_error(self, exc: ProtocolError) -> None:
        ex = self.ex
        if ex is not None and not ex.request_done:
            # the error lies in the message being forwarded: the server must never see
            # it complete (SPEC §5), and that server connection is not reused.
            if ex.conn is not None:
                ex.conn.abort()
                ex.conn = None
            if ex.response_started:
                self.transport.abort()
                return
            self._finish(ex, exc.status)
            self.ex = None
            self._error(exc.status, exc.reason)
        elif ex is None:
            self.queue.clear()
            self._error(exc.status, exc.reason)
        # else: an earlier request is still being answered; the error is sent after it
        # (the parser keeps it in `error` and _pump stops at the end of the queue).

    # -- the exchange pump ----------------------------------------------------------------
    def _pump(self) -> None:
        while self.queue and not self.closing:
            ev = self.queue[0]
            ex = self.ex
            if isinstance(ev, RequestHead):
                if ex is not None:
                    self._pause_client()  # pipelined: wait until this response ends
                    return
                self.queue.popleft()
                self._start(ev)
                continue
            self.queue.popleft()
            if ex is None:
                continue
            if isinstance(ev, BodyChunk):
                ex.bytes_in += len(ev.data)
                self._to_server(ex, encode_chunk(ev.data) if ex.head.framing is Framing.CHUNKED else ev.data)
            elif isinstance(ev, EndOfMessage):
                ex.request_done = True
                if ex.head.framing is Framing.CHUNKED:
                    self._to_server(ex, encode_last_chunk(ev.trailers))
        if not self.queue and self.ex is None and self.parser.error is not None and not self.closing:
            self._error(self.parser.error.status, self.parser.error.reason)

    def _start(self, head: RequestHead) -> None:
        self.requests += 1
        ex = self.ex = Exchange(head)
        if not self._follow_reload(ex):
            return
        assert self.vip is not None and self.snap is not None
        if self.snap.trusted_proxies:
            xff = head.header(b"x-forwarded-for")
            xff_list = [xff.decode("latin-1")] if xff else None
        else:
            xff_list = None
        flow = Flow(self.peer, self.vip.address, url=head.path.decode("latin-1"), headers=_HeaderView(head),
                    cookies=_CookieView(head), xff=xff_list)
        self.last_server = self.last_client
        self._set_timer(min(self.snap.timeouts["server"], self.snap.timeouts["client"]), "exchange")
        if self.balancer.store.shared:
            d, must_publish = self.balancer.decide_now(self.vip, flow, self.snap)
            if d is None or must_publish:
                self.loop.create_task(self._start_shared(ex, flow, d))
                return
            self._decided(ex, flow, d)
            return
        self._decided(ex, flow, self.balancer.decide(self.vip, flow, self.snap))

    async def _start_shared(self, ex: Exchange, flow: Flow, made: Decision | None) -> None:
        """The shared store brackets the decision (load, decide, publish): core.store.
        `made`: decided already on a current local copy, only to be published."""
        assert self.vip is not None
        if made is None:
            d = await self.balancer.decide_shared(self.vip, flow, self.snap)
        else:
            d = await self.balancer.publish(made, self.vip, flow, self.snap)
        if self.closed or self.ex is not ex:  # the client left while the store answered
            if d.member is not None:
                self.balancer.closed(d)
            return
        self._decided(ex, flow, d)

    def _decided(self, ex: Exchange, flow: Flow, d: Decision) -> None:
        ex.decision = d
        if d.member is None:
            if d.queue:
                self.loop.create_task(self._queue_wait(ex, flow))
            else:
                self._reply_error(ex, 503)
            return
        self.loop.create_task(self._connect(ex, flow))

    def _follow_reload(self, ex: Exchange) -> bool:
        """Each request is a flow: a keep-alive connection's next request is decided on the
        configuration in service now, never on the one its connection was accepted under
        (a reload that removed an rserver must not keep feeding it)."""
        snap = self.balancer.snapshot
        if snap is self.snap:
            return True
        vip = snap.vips.get(self.vip_key)
        if vip is None or not vip.inservice:
            self._reply_error(ex, 503)  # the reload took this VIP out
            return False
        if not vip.policy.http:
            ex.close_after = True  # it became an L4 VIP: this last request, then a close
            return True
        self.snap, self.vip = snap, vip
        return True

    async def _queue_wait(self, ex: Exchange, flow: Flow) -> None:
        assert self.snap is not None and self.vip is not None
        deadline = self.loop.time() + self.snap.timeouts["queue"]
        while not self.closed and self.ex is ex and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
            d = self.balancer.decide(self.vip, flow, self.snap, requeue=True)
            if d.member is not None:
                ex.decision = d
                await self._connect(ex, flow)
                return
            if not d.queue:
                break
        if self.ex is ex and not self.closed:
            self._reply_error(ex, 503)

    async def _connect(self, ex: Exchange, flow: Flow, fresh: bool = False) -> None:
        assert self.snap is not None
        pool = self.balancer.pool
        d = ex.decision
        for attempt in range(2):
            assert d is not None and d.member is not None
            target = (d.address, d.port)
            conn = None if fresh else pool.take(target)
            if conn is None:
                try:
                    conn = await pool.connect(target, self.snap.timeouts["connect"])
                except (OSError, asyncio.TimeoutError) as exc:
                    note_connect_failure(target[0], target[1], exc)
                    if self.closed or self.ex is not ex:
                        return
                    nd = reroute(self.balancer.state, d, self.balancer.clock(), flow) if attempt == 0 else None
                    if nd is None:
                        if attempt:
                            self.balancer.closed(d)
                        ex.decision = None
                        self._reply_error(ex, 502)
                        return
                    d = ex.decision = nd
                    continue
            if self.closed or self.ex is not ex:
                pool.give_back(conn)
                return
            self._attach(ex, conn)
            return

    def _attach(self, ex: Exchange, conn: ServerConn) -> None:
        assert self.vip is not None and self.snap is not None
        ex.conn = conn
        conn.owner = self
        head = ex.head
        xff = self.peer
        if self.snap.trusted_proxies and _is_trusted(self.peer, self.snap.trusted_proxies):
            prior = head.header(b"x-forwarded-for")
            if prior:
                xff = prior.decode("latin-1") + ", " + self.peer
        extra = [(b"x-forwarded-for", xff.encode("latin-1")),
                 (b"x-forwarded-proto", b"https" if self.tls else b"http")]
        if self.write_paused:
            conn.pause()  # the client is not reading: don't read its response yet
        out = [serialize_request_head(head, extra)]
        out.extend(ex.pending)
        ex.pending = []
        assert conn.transport is not None
        conn.transport.write(b"".join(out))
        ex.body_sent = head.framing is not Framing.NONE
        self.last_server = self.loop.time()
        if self.paused and len(self.queue) == 0:
            self._resume_client()

    def _to_server(self, ex: Exchange, data: bytes) -> None:
        if not data:
            return
        if ex.conn is None or ex.conn.transport is None:
            ex.pending.append(data)
            self._pause_client()  # bound what we hold while connecting
            return
        ex.body_sent = True
        ex.conn.transport.write(data)

    # -- server side (called by ServerConn) -----------------------------------------------
    def server_data(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:
            return
        self.last_server = self.loop.time()
        try:
            events = ex.rparser.feed(data)
        except ProtocolError as exc:
            self._bad_response(ex, exc)
            return
        self._response_events(ex, events)

    def server_eof(self) -> None:
        ex = self.ex
        if ex is None:
            return
        try:
            events = ex.rparser.feed_eof()
        except ProtocolError as exc:
            self._server_gone(ex, exc)
            return
        self._response_events(ex, events)

    def server_lost(self, exc: Exception | None) -> None:
        ex = self.ex
        if ex is None or ex.rparser.complete:
            return
        conn, ex.conn = ex.conn, None  # its transport is gone
        try:
            events = ex.rparser.feed_eof()
        except ProtocolError as perr:
            self._server_gone(ex, perr, reused=conn is not None and conn.reused)
            return
        self._response_events(ex, events)

    def server_pause(self) -> None:
        self._pause_client()

    def server_resume(self) -> None:
        if not self.queue or not isinstance(self.queue[0], RequestHead):
            self._resume_client()

    def pause_writing(self) -> None:
        """The client's buffer is full: stop reading the server; `timeout client` runs."""
        self.write_paused = True
        self.last_client = self.loop.time()
        ex = self.ex
        if ex is not None and ex.conn is not None:
            ex.conn.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        now = self.last_client = self.loop.time()
        ex = self.ex
        if ex is not None and ex.conn is not None:
            self.last_server = now
            ex.conn.resume()

    def _server_gone(self, ex: Exchange, exc: ProtocolError, reused: bool | None = None) -> None:
        """The server closed before the response ended."""
        conn_was_pooled = (ex.conn is not None and ex.conn.reused) if reused is None else reused
        if ex.conn is not None:
            ex.conn.abort()  # half-closed by the server: never reused, never leaked
            ex.conn = None
        if ex.response_started:
            self._finish(ex, ex.status)
            self.ex = None
            self.transport.close()  # truncated: what was relayed, then a close (SPEC §5)
            return
        if conn_was_pooled and ex.head.framing is Framing.NONE and not ex.retried_pooled:
            # a reused keep-alive connection closed under us before any byte: safe to retry
            ex.retried_pooled = True
            ex.rparser = ResponseParser(ex.head.method)
            assert self.vip is not None
            flow = Flow(self.peer, self.vip.address)
            self.loop.create_task(self._connect(ex, flow, fresh=True))
            return
        self._reply_error(ex, 502)

    def _bad_response(self, ex: Exchange, exc: ProtocolError) -> None:
        log.warning("invalid response from %s: %s", ex.decision.member.rserver if ex.decision and ex.decision.member else "?", exc.reason)
        if ex.conn is not None:
            ex.conn.abort()  # never reused
            ex.conn = None
        if ex.response_started:
            self._finish(ex, ex.status)
            self.ex = None
            self.transport.abort()
            return
        self._reply_error(ex, 502)

    def _response_events(self, ex: Exchange, events: list) -> None:
        """Relay what one server read produced, in ONE write: head and body usually arrive
        together, and a send per piece was the largest own-time item in the profile."""
        out: list[bytes] = []
        for ev in events:
            if isinstance(ev, ResponseHead):
                out.append(self._response_head(ex, ev))
            elif isinstance(ev, BodyChunk):
                ex.bytes_out += len(ev.data)
                out.append(encode_chunk(ev.data) if ex.chunked_out else ev.data)
            elif isinstance(ev, EndOfMessage):
                if ex.chunked_out:
                    out.append(encode_last_chunk(ev.trailers))
                self._write(out)
                self._response_done(ex)
                return
        self._write(out)

    def _write(self, out: list[bytes]) -> None:
        if len(out) == 1:
            self.transport.write(out[0])
        elif out:
            self.transport.write(b"".join(out))

    def _response_head(self, ex: Exchange, head: ResponseHead) -> bytes:
        """The head to send the client (b"" for a 1xx an HTTP/1.0 client must not see)."""
        if head.informational:
            return serialize_response_head(head) if ex.head.version >= (1, 1) else b""
        d = ex.decision
        extra: list[tuple[bytes, bytes]] = []
        if d is not None:
            if d.set_cookie and d.scope is not None:
                extra.append((b"set-cookie", self._cookie(d)))
            if d.learn_cookie:
                self._learn_cookie(d, head)
        framing = head.framing
        if framing is Framing.CHUNKED and ex.head.version < (1, 1):
            framing = Framing.CLOSE  # an HTTP/1.0 client gets the body de-chunked, then a close
            ex.close_after = True
        if framing is Framing.CLOSE:
            ex.close_after = True
        if ex.close_after or self.parser.error is not None:
            extra.append(_CLOSE)
            ex.close_after = True
        ex.chunked_out = framing is Framing.CHUNKED
        ex.status = head.status
        ex.response_started = True
        return serialize_response_head(head, extra, framing=framing)

    def _cookie(self, d: Decision) -> bytes:
        scope = d.scope
        assert scope is not None and d.set_cookie is not None
        attrs = "; Path=/; HttpOnly"
        if not scope.browser_expire:
            attrs += f"; Max-Age={int(scope.timeout_s)}"
        if self.tls:
            attrs += "; Secure"
        return f"{scope.cookie_name}={d.set_cookie}{attrs}".encode("latin-1")

    def _learn_cookie(self, d: Decision, head: ResponseHead) -> None:
        want = (d.learn_cookie or "").encode("latin-1") + b"="
        for name, value in head.headers:
            if name == b"set-cookie" and value.startswith(want):
                learn(d, value[len(want):].split(b";", 1)[0].decode("latin-1"), self.balancer.clock())
                return

    def _response_done(self, ex: Exchange) -> None:
        conn = ex.conn
        ex.conn = None
        if conn is not None:
            if ex.rparser.must_close or not ex.request_done:
                conn.close()
            else:
                self.balancer.pool.give_back(conn)
        self._finish(ex, ex.status)
        self.ex = None
        if ex.close_after or not ex.request_done or (self.client_eof and not self.queue):
            self.closing = True
            self._cancel_timer()
            self.transport.close()
            return
        assert self.snap is not None
        if self.parser.idle:
            self._set_timer(self.snap.timeouts["keep-alive"], "keep-alive")
        else:  # the next request's head has begun to arrive: it gets `timeout http-request`
            self._set_timer(self.snap.timeouts["http-request"], "http-request")
        self._resume_client()
        self._pump()

    # -- errors, timers, logging ------------------------------------------------------------
    def _reply_error(self, ex: Exchange, status: int) -> None:
        if ex.conn is not None:
            ex.conn.abort()
            ex.conn = None
        self._finish(ex, status)
        self.ex = None
        self._error(status, "")

    def _error(self, status: int, reason: str) -> None:
        """Send a canned response, then a lingering close (SPEC §5)."""
        if self.closing or self.closed:
            return
        self.closing = True
        self.queue.clear()
        self._cancel_timer()
        if reason:
            RATE.note(f"http_{status}", f"client {self.peer}: {status} {reason}", logging.INFO,
                      f"requests got {status}")  # one line per cause and window, not per client
            self.balancer.access_log({"ts": time.time(), "client": self.peer,
                                      "vip": self.vip.name if self.vip else "", "status": status,
                                      "outcome": None, "error": reason})
        self.transport.write(error_response(status))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._resume_client()
        self.linger = self.loop.call_later(LINGER_S, self.transport.close)

    def _finish(self, ex: Exchange, status: int) -> None:
        d = ex.decision
        if d is not None:
            self.balancer.closed(d)
            ex.decision = None
        vip = self.vip
        head = ex.head
        self.balancer.access_log({
            "ts": ex.started, "client": self.peer, "vip": vip.name if vip else "",
            "class": d.class_name if d else None, "farm": d.farm.name if d and d.farm else None,
            "rserver": f"{d.member.rserver}:{d.port}" if d and d.member else None,
            "outcome": d.outcome if d else "no_server", "status": status,
            "request": f"{head.method.decode('latin-1')} {head.path.decode('latin-1')[:200]}",
            "bytes_in": ex.bytes_in, "bytes_out": ex.bytes_out,
            "duration_s": round(time.time() - ex.started, 4), "mode": "https" if self.tls else "http",
        })

    def _set_timer(self, seconds: float, kind: str) -> None:
        self._arm(self.loop.time() + seconds, kind)

    def _arm(self, due: float, kind: str) -> None:
        """One deadline per connection, checked lazily: moving it later (every request
        does) costs two attribute writes; only an earlier deadline re-arms the loop timer.
        (Three call_later/cancel pairs per request were ~5% of an L7 request in bench/.)"""
        self.timer_kind = kind
        self.deadline = due
        if self.timer is None or due < self.timer_due:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_due = due
            self.timer = self.loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self.timer = None
        if not self.timer_kind or self.closed or self.closing:
            return
        if self.loop.time() < self.deadline:  # moved later since armed: sleep on
            self.timer_due = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._fire)
            return
        self._timeout(self.timer_kind)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_kind = ""
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None

    def _timeout(self, kind: str) -> None:
        self.timer_kind = ""
        if self.closed or self.closing:
            return
        if kind == "keep-alive":
            self.closing = True
            self.transport.close()  # idle between requests: a silent close
        elif kind == "http-request":
            self._error(408, "request head not received in time")
        elif kind == "exchange":
            self._exchange_timeout()

    def _exchange_timeout(self) -> None:
        ex = self.ex
        assert self.snap is not None
        if ex is None:
            return
        now = self.loop.time()
        client_s, server_s = self.snap.timeouts["client"], self.snap.timeouts["server"]
        # whom are we waiting for?  (see "Timers" in the module header)
        client_waits = self.write_paused or (not ex.request_done and not self.paused)
        server_waits = ex.conn is not None and not self.write_paused
        client_idle = client_waits and now - self.last_client >= client_s
        server_idle = server_waits and now - self.last_server >= server_s
        if not (client_idle or server_idle):
            due = now + min(client_s, server_s)
            if client_waits:
                due = min(due, self.last_client + client_s)
            if server_waits:
                due = min(due, self.last_server + server_s)
            self._arm(max(due, now + 0.05), "exchange")
            return
        if ex.response_started:
            RATE.note("response_inactivity", f"client {self.peer}: {'client' if client_idle else 'server'} "
                      "inactivity during the response; both connections aborted", logging.INFO,
                      "exchanges aborted for inactivity during the response")
            if ex.conn is not None:
                ex.conn.abort()
                ex.conn = None
            self._finish(ex, ex.status)
            self.ex = None
            self.closing = True
            self.transport.abort()
            return
        self._reply_error(ex, 408 if client_idle else 504)

    def _pause_client(self) -> None:
        if not self.paused and not self.closing:
            self.paused = True
            self.transport.pause_reading()

    def _resume_client(self) -> None:
        if self.paused:
            self.paused = False
            self.last_client = self.loop.time()  # its inactivity counts from now
            self.transport.resume_reading()
