"""The L7 (HTTP/1.1) exchange machine, sans-IO: events in, actions out (h11's Connection).

Owns what happens to one client connection of an L7 VIP: requests are validated
(`http.request`), each is classified and decided on its own, forwarded re-serialised
to a pooled server connection (SPEC §5), and the response relayed back.  It never
touches a socket, a task or the event loop: every action is a call on its `Port` (the
asyncio protocol in `protocol.py`, or a fake one in tests), and time is `port.now()`.
This module is over 400 lines (about 470) because the client half of an exchange
(pipelining, request bodies, errors, the lingering close, timer expiry) reads best in
one place; the server half is `upstream.py`, the timer table `timers.py`, the Port
interface `port.py`, the glue `protocol.py`.

An upgrade request (`RequestHead.upgrade`) gets a new server connection and holds the
client's further bytes; a 101 hands the connection to `tunnel.switch` (a byte relay,
`port.tunnel`); any other answer and HTTP/1.1 goes on.

Events in: `client_data`, `client_eof`, `decided`, `connected`, `connect_failed`,
`server_data`, `server_eof`, `server_lost`, `client_write_paused/resumed`,
`server_write_paused/resumed`, `tick(now)`.
Actions out (Port): `decide` (returns a Decision now, or None and calls `decided`
later), `take` (an idle pooled server connection), `connect` (later `connected` or
`connect_failed`), `write`, `write_eof`, `pause_reading`, `resume_reading`, `close`,
`abort_transport`, `arm(deadline)`, `give_back(conn)`, `record(FlowRecord)`; server connections
are driven through their own `write/pause/resume/close/abort`.

The fast path (a complete head in one read, an idle pooled connection, the memory
store): decide, take, write the head and its body bytes in one write; a response that
arrives in one read goes out in one write.  No task, no timer re-arm.  A bodiless
request that is one whole read skips the parser's event list (`RequestParser.whole`),
as does a response that is (`ResponseParser.whole`).  Compiled (setup.py), Exchange is
a cdef class whose fields are declared in upstream.pxd: a new field goes there too.

Timers (SPEC §5, issue 13 item 1): one deadline per connection, checked lazily by
`tick`; `timers.TIMERS` says which timeout runs in which phase and what expiry does.
While request body bytes still flow to the server, the server is never late.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from buddylb.core.decide import Decision, Flow
from buddylb.core.inserts import insert_fields
from buddylb.core.keys import _is_trusted
from buddylb.errors import ProtocolError
from buddylb.http.framing import F_CHUNKED
from buddylb.http.request import (
    BodyChunk, RequestHead, RequestParser, encode_chunk, encode_last_chunk, serialize_request_head,
)
from buddylb.http.response import ResponseParser, error_response
from buddylb.io.flow import Lease
from buddylb.io.lograte import RATE
from buddylb.io.l7.timers import CLOSED, EXCHANGE, HEAD, IDLE, LINGER, LINGER_S, REPLY_408, TIMERS, judge
from buddylb.io.l7.port import Port, RequestFields
from buddylb.io.l7.upstream import Upstream
from buddylb.io.record import FlowRecord

log = logging.getLogger("buddylb.l7")
_NEVER = float("inf")

class Exchange(Upstream):
    """The L7 machine of one client connection (see the module header)."""

    __slots__ = ("port", "balancer", "vip_key", "peer", "tls", "snap", "vip", "parser", "queue", "phase",
                 "deadline", "armed", "last_client", "last_server", "paused", "client_blocked",
                 "server_blocked", "eof_seen", "requests", "headers", "cookies", "flow", "forwarded",
                 "peer_port", "head", "lease", "conn", "rparser", "rec", "pending", "request_done",
                 "response_started", "chunked_out", "close_after", "retried", "dispatched", "vip_name", "now", "spare",
                 "known", "h_method", "h_path", "h_upgrade", "h_url", "h_size", "h_bodiless", "h_keep", "h_v11",
                 "t_head", "t_idle", "t_exchange", "trusted", "inserts", "underscores")

    def __init__(self, port: Port, balancer: Any, vip_key: tuple[str, int], tls: bool) -> None:
        self.port, self.now = port, port.now  # the clock bound once: read several times per request
        self.balancer, self.vip_key = balancer, vip_key
        self.peer, self.peer_port = "", 0
        self.forwarded: tuple = ()
        self.tls = tls
        self.snap = balancer.snapshot
        self.vip = self.snap.vips.get(vip_key)
        self.vip_name = self.vip.name if self.vip is not None else ""  # Vip.name formats it on each call
        self._settings()
        self.parser = RequestParser()
        self.queue: deque = deque()  # events of pipelined requests, waiting for their turn
        self.phase = HEAD
        self.deadline = 0.0
        self.armed = _NEVER  # the earliest deadline the port was asked to tick at, not yet ticked
        self.last_client = self.last_server = 0.0
        self.paused = False  # we stopped reading the client
        self.client_blocked = False  # the client stopped reading us
        self.server_blocked = False  # the server stopped reading us
        self.eof_seen, self.requests = False, 0
        self.headers, self.cookies = RequestFields(False), RequestFields(True)
        self.flow = Flow("", self.vip.address if self.vip else "", headers=self.headers, cookies=self.cookies)
        # the request in flight (one at a time; fields reset by _begin)
        self.head: RequestHead | None = None
        # what each request reads of its head, copied once per head object (_know)
        self.known: RequestHead | None = None
        self.h_method = self.h_path = self.h_upgrade = b""
        self.h_url, self.h_size, self.h_bodiless, self.h_keep, self.h_v11 = "", 0, False, False, False
        self.lease: Lease | None = None
        self.conn: Any = None
        self.rparser: ResponseParser | None = None
        self.spare: ResponseParser | None = None  # the last request's parser, reset for the next one
        self.rec: FlowRecord | None = None
        self.pending: list[bytes] = []
        self.request_done = self.response_started = self.chunked_out = self.close_after = False
        self.retried = False
        self.dispatched = False  # the request in flight was handed to `decide`

    # -- the client side ---------------------------------------------------------------
    def start(self, peer: str, peer_port: int = 0) -> None:
        """The client connected from `peer` (its address) and `peer_port`."""
        self.peer = self.flow.source = peer
        self.peer_port = peer_port
        self.forwarded = ((b"x-forwarded-for", peer.encode("latin-1")),
                          (b"x-forwarded-proto", b"https" if self.tls else b"http"))
        if self.vip is None or not self.vip.inservice:
            self._error(503, "VIP out of service")
            return
        self._enter(HEAD, self.t_head)

    def client_data(self, data: bytes) -> None:
        if self.phase is LINGER or self.phase is CLOSED:
            return  # lingering close: discard
        now = self.last_client = self.now()
        if self.phase is IDLE:
            self._enter(HEAD, self.t_head, now)
        if self.head is None and not self.queue:
            head = self.parser.whole(data)  # the usual read: one whole bodiless request
            if head is not None:
                if self._begin(head, now):
                    self._dispatch(now)
                return
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        if self.queue or self.head is not None:
            self.queue.extend(events)
            self._pump(now)
        else:
            self._run(events, now)
        if self.parser._error is not None and self.phase is not LINGER:
            self._protocol_error(self.parser._error)

    def client_eof(self) -> bool:
        """True: keep the transport half-open to finish the exchange in flight."""
        self.eof_seen = True
        if self.phase is LINGER or self.phase is CLOSED:
            return False
        try:
            self.parser.feed_eof()
        except ProtocolError as exc:
            self._protocol_error(exc)
            return True
        return self.head is not None or bool(self.queue)

    def client_write_paused(self) -> None:
        """The client's buffer is full: stop reading the server; `timeout client` runs."""
        self.client_blocked = True
        self.last_client = self.now()
        if self.conn is not None:
            self.conn.pause()

    def client_write_resumed(self) -> None:
        self.client_blocked = False
        now = self.last_client = self.now()
        if self.conn is not None:
            self.last_server = now
            self.conn.resume()

    def lost(self) -> None:
        """The client connection is gone: give everything back."""
        if self.phase is CLOSED:
            return
        self.phase = CLOSED
        if self.head is not None:
            self._drop_conn()
            self._finish(self.rec.status if self.rec and self.rec.status else 499)

    def abort(self) -> None:
        """fail-action purge, drain deadline: both connections at once."""
        self._drop_conn()
        self.port.abort_transport()

    def _run(self, events: list, now: float) -> None:
        """Events of one read (at `now`); the usual case is one whole request.  A request is
        decided after the body bytes that came with its head, so head and body go to
        the server in one write."""
        undecided = False
        for i, ev in enumerate(events):
            if self.phase is LINGER or self.phase is CLOSED:
                return
            if ev.__class__ is RequestHead:
                if undecided:
                    undecided = False
                    self._dispatch(now)
                if self.head is not None:  # pipelined: wait until this response ends
                    self.queue.extend(events[i:])
                    self._pause_client()
                    return
                undecided = self._begin(ev, now)
            elif self.head is not None:
                self._body_event(ev)
        if undecided:
            self._dispatch(now)

    def _pump(self, now: float) -> None:
        """The queued events of pipelined requests, in turn (`now`: the clock of this event)."""
        undecided = False
        while self.queue and self.phase is not LINGER and self.phase is not CLOSED:
            ev = self.queue[0]
            if ev.__class__ is RequestHead:
                if undecided:
                    undecided = False
                    self._dispatch(now)
                if self.head is not None:
                    self._pause_client()
                    return
                self.queue.popleft()
                undecided = self._begin(ev, now)
                continue
            self.queue.popleft()
            if self.head is not None:
                self._body_event(ev)
        if undecided:
            self._dispatch(now)
        error = self.parser._error
        if not self.queue and self.head is None and error is not None and self.phase is not LINGER:
            self._error(error.status, error.reason)

    def _body_event(self, ev: Any) -> None:
        head = self.head
        assert head is not None and self.rec is not None
        if ev.__class__ is BodyChunk:
            self.rec.bytes_in += len(ev.data)
            self._to_server(encode_chunk(ev.data) if head.framing is F_CHUNKED else ev.data)
        else:  # EndOfMessage
            self.request_done = True
            if head.framing is F_CHUNKED:
                self._to_server(encode_last_chunk(ev.trailers))
            if self.conn is not None:
                self.last_server = self.now()  # the server has it all: its silence counts now

    def _protocol_error(self, exc: ProtocolError) -> None:
        if self.head is not None and not self.request_done:
            # the error lies in the message being forwarded: the server must never see it
            # complete (SPEC §5), and that server connection is not reused
            self._drop_conn()
            if self.response_started:
                self._finish(self.rec.status if self.rec else 0)
                self.phase = CLOSED
                self.port.abort_transport()
                return
            self._finish(exc.status)
            self._error(exc.status, exc.reason)
        elif self.head is None:
            self.queue.clear()
            self._error(exc.status, exc.reason)
        # else: an earlier request is still being answered; the error follows it (_pump)

    # -- one request ----------------------------------------------------------------------
    def _begin(self, head: RequestHead, now: float) -> bool:
        """Set up the request in flight (its head came at `now`); False: it was answered
        already (reload)."""
        self.requests += 1
        self.head = head
        if head is not self.known:
            self._know(head)
        self.request_done = self.h_bodiless
        self.response_started = self.chunked_out = self.retried = False
        self.close_after = not self.h_keep
        rp = self.spare
        if rp is None:
            self.rparser = ResponseParser(self.h_method, self.h_upgrade)
        else:  # _finish kept it: nothing refers to it any more
            self.spare = None
            rp.reset(self.h_method, self.h_upgrade)
            self.rparser = rp
        self.dispatched = False
        rec = self.rec = FlowRecord(self.peer, "https" if self.tls else "http", time.time())
        rec.method, rec.path = self.h_method, self.h_path
        rec.bytes_in = self.h_size
        if not self._follow_reload():
            return False
        assert self.vip is not None
        rec.vip = self.vip_name
        flow = self.flow
        flow.url = self.h_url
        if self.trusted:
            xff = head.header(b"x-forwarded-for")
            flow.xff = [xff.decode("latin-1")] if xff else None
        self.last_server = self.last_client = now
        self._enter(EXCHANGE, self.t_exchange, now)
        if self.h_upgrade:
            self._pause_client()  # until the server answers: tunnel bytes or the next request
        return True

    def _dispatch(self, now: float) -> None:
        if self.head is None:
            return
        self.dispatched = True
        d = self.port.decide(self.flow)
        if d is not None:
            self.decided(d, now)
        elif self.pending:
            self._pause_client()  # a task decides: bound what we hold meanwhile

    def decided(self, d: Decision, now: float = -1.0) -> None:
        """The decision for the request in flight (from `decide`, or later from a task).
        `now`: the clock of the event that decided at once; -1: read it when needed."""
        assert self.rec is not None
        member = d.member
        if member is None:
            self.rec.decision(d)
            self._reply_error(503)
            return
        lease = self.lease = Lease(self.balancer, d)
        farm = d.farm
        port = member.port  # Decision.address and .port, inlined: two Python calls per request otherwise
        if port is None:
            port = d.vip.port
        if self.h_upgrade:  # an upgrade gets a connection of its own: never a pooled one (tunnel.py)
            conn = None
        elif farm is not None and farm.send_proxy:  # pooled per client address: io/pool.py
            conn = self.port.take(member.address, port, self.peer)
        else:
            conn = self.port.take(member.address, port)
        if conn is None:
            if self.pending:
                self._pause_client()  # bound what we hold while connecting
            self.port.connect(lease)
        else:
            self.connected(conn, now)

    def connected(self, conn: Any, now: float = -1.0) -> None:
        """A server connection for the request in flight (`now` as in `decided`)."""
        lease = self.lease
        assert lease is not None and self.head is not None and self.rec is not None
        self.conn = conn
        conn.owner = self
        lease.track(self)
        head = self.head
        extra = self.forwarded  # X-Forwarded-For / -Proto (SPEC §5), built once per connection
        if self.trusted and _is_trusted(self.peer, self.trusted):
            prior = head.header(b"x-forwarded-for")
            if prior:
                extra = ((b"x-forwarded-for", prior + b", " + extra[0][1]), extra[1])
        inserts = self.inserts
        if inserts and lease.decision.class_name in inserts:  # ACE insert-http (SPEC §2.4)
            assert self.vip is not None
            extra = (*extra, *insert_fields(inserts[lease.decision.class_name], self.peer, self.peer_port,
                                            self.vip.address, self.vip.port))
        if self.h_upgrade:  # for this request only (http/upgrade.py)
            extra = (*extra, (b"connection", b"upgrade"), (b"upgrade", self.h_upgrade))
        if self.client_blocked:
            conn.pause()  # the client is not reading: don't read its response yet
        out = serialize_request_head(head, extra, True, self.underscores)  # positional
        if self.pending:
            out = b"".join([out, *self.pending])
            self.pending = []
        conn.write(out)
        self.last_server = self.now() if now < 0.0 else now
        if self.paused and not self.queue and not self.h_upgrade:
            self._resume_client()

    def connect_failed(self) -> None:
        if self.head is not None and self.lease is not None:
            assert self.rec is not None
            self.rec.decision(self.lease.decision)
            self.lease = None  # released by io.flow.Connector
            self._reply_error(502)

    def _to_server(self, data: bytes) -> None:
        if not data:
            return
        if self.conn is None:
            self.pending.append(data)
            if self.dispatched:
                self._pause_client()  # bound what we hold while deciding or connecting
            return
        self.conn.write(data)
        self.last_server = self.last_client  # body bytes flowing: the server is not late

    # -- ends, errors, timers ---------------------------------------------------------------
    def _drop_conn(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()  # half-sent or half-read: never reused

    def _reply_error(self, status: int) -> None:
        self._drop_conn()
        self._finish(status)
        self._error(status, "")

    def _error(self, status: int, reason: str) -> None:
        """Send a canned response, then a lingering close (SPEC §5)."""
        if self.phase is LINGER or self.phase is CLOSED:
            return
        self.queue.clear()
        if reason:
            RATE.note(f"http_{status}", f"client {self.peer}: {status} {reason}", logging.INFO,
                      f"requests got {status}")  # one line per cause and window, not per client
            rec = FlowRecord(self.peer, "https" if self.tls else "http", time.time())
            rec.vip, rec.status, rec.error = self.vip_name, status, reason
            self.port.record(rec)
        self.port.write(error_response(status))
        self.port.write_eof()
        self._resume_client()
        self._enter(LINGER, LINGER_S)

    def tick(self, now: float) -> None:
        """The timer fired: expire per `TIMERS`, or say when to look again."""
        self.armed = _NEVER  # the port ticked: nothing is armed now
        phase = self.phase
        if phase is CLOSED:
            return
        if phase is EXCHANGE:
            self._judge(now)
            return
        if now < self.deadline:
            self._arm(self.deadline)
            return
        _, expiry = TIMERS[phase]
        if expiry is REPLY_408:
            self._error(408, "request head not received in time")
        else:
            self.phase = CLOSED
            self.port.close()

    def _judge(self, now: float) -> None:
        """Whom are we waiting for, and is it late?  (timers.py)"""
        if self.head is None:
            return
        t = self.snap.timeouts
        late, due = judge(
            now, t["client"], t["server"],
            self.client_blocked or (not self.request_done and not self.paused),
            self.conn is not None and not self.client_blocked
            and (self.request_done or self.server_blocked or self.response_started),
            self.last_client, self.last_server)
        if late is None:
            self.deadline = due
            self._arm(due)
            return
        if self.response_started:
            RATE.note("response_inactivity", f"client {self.peer}: {late} inactivity during the response; "
                      "both connections aborted", logging.INFO, "exchanges aborted for inactivity during the response")
            self._drop_conn()
            self._finish(self.rec.status if self.rec else 0)
            self.phase = CLOSED
            self.port.abort_transport()
            return
        self._reply_error(408 if late == "client" else 504)

    def _pause_client(self) -> None:
        if not self.paused and self.phase is not LINGER and self.phase is not CLOSED:
            self.paused = True
            self.port.pause_reading()

    def _resume_client(self) -> None:
        if self.paused:
            self.paused = False
            self.last_client = self.now()  # its inactivity counts from now
            self.port.resume_reading()
