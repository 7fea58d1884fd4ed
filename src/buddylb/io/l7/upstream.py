"""The server side of the L7 exchange machine: response relay, cookies, server faults;
what each request reads, kept in C fields (the configuration it runs on, followed
across a reload; its head's values); and the steps both halves take on every request
(`_finish`, `_enter`), here so that the server half calls them in C too.

A base class of `exchange.Exchange` (split out only to keep each file readable; it has
no state of its own and no meaning apart): server events from the pooled connection
(`server_data`, `server_eof`, `server_lost`, write flow control), the response head as
the client gets it (hop-by-hop removed, Set-Cookie for `cookie insert`, learned cookies,
HTTP/1.0 de-chunking), and what a dead or lying server turns into (SPEC §5: a pooled
connection that died before any byte -> one retry; mid-response -> truncate and close;
invalid -> 502 or abort).  Like the rest of the machine it never touches I/O itself.
"""
from __future__ import annotations

import logging
import time

from buddylb.core.decide import Decision, learn
from buddylb.errors import ProtocolError
from buddylb.http.framing import F_CHUNKED, F_CLOSE, F_NONE
from buddylb.http.request import BodyChunk, RequestHead, encode_chunk, encode_last_chunk, head_size
from buddylb.http.response import ResponseHead, ResponseParser, serialize_response_head
from buddylb.io.l7.timers import CLOSED, HEAD, IDLE
from buddylb.io.l7.tunnel import switch

log = logging.getLogger("buddylb.l7")
_CLOSE = (b"connection", b"close")


class Upstream:
    """Server-side events, the response relay and the configuration of `Exchange` (its attributes)."""

    __slots__ = ()

    # The machine's fields are set in Exchange.__init__; compiled, they are C fields
    # declared in upstream.pxd.  This half also calls Exchange's _drop_conn,
    # _reply_error, _pause_client, _resume_client, _pump and client_data (as Python
    # methods: none of them on the usual request's path).

    # -- what requests read, kept in C fields: the configuration, the head ---------------
    def _follow_reload(self) -> bool:
        """Each request is a flow: a keep-alive connection's next request is decided on the
        configuration in service now (a reload that removed an rserver must not keep
        feeding it)."""
        snap = self.balancer.snapshot
        if snap is self.snap:
            return True
        vip = snap.vips.get(self.vip_key)
        if vip is None or not vip.inservice:
            self._reply_error(503)  # the reload took this VIP out
            return False
        if not vip.policy.http:
            self.close_after = True  # it became an L4 VIP: this last request, then a close
            return True
        self.snap, self.vip, self.vip_name = snap, vip, vip.name
        self.flow.destination = vip.address
        self._settings()
        return True

    def _settings(self) -> None:
        """What each request reads of the snapshot and the VIP, kept in C fields: read
        once per configuration, not through three attribute lookups per request."""
        snap = self.snap
        t = snap.timeouts
        self.t_head, self.t_idle = t["http-request"], t["keep-alive"]
        self.t_exchange = min(t["server"], t["client"])
        self.trusted = snap.trusted_proxies
        self.underscores = snap.config.underscores_in_headers
        self.inserts = self.vip.policy.inserts if self.vip is not None else None

    def _know(self, head: RequestHead) -> None:
        """Copy what each request reads of `head` into C fields.  A keep-alive client
        repeating a request gets the same head object back (`RequestParser.whole`
        remembers it), and then this is skipped: no attribute lookups per request."""
        if head._size < 0:  # byte counters include heads (issue 14); a remembered head keeps its size
            head._size = head_size(head)
        if head._url is None:  # the path as str, kept with a remembered head too
            head._url = head.path.decode("latin-1")
        self.known = self.headers.head = self.cookies.head = head
        self.h_method, self.h_path, self.h_upgrade = head.method, head.path, head.upgrade
        self.h_url, self.h_size = head._url, head._size
        self.h_bodiless, self.h_keep, self.h_v11 = head.framing is F_NONE, head.keep_alive, head.version >= (1, 1)

    # -- the end of a request, the deadline (both halves, per request: C calls) ------------
    def _finish(self, status: int) -> None:
        """The request in flight ended: release its lease once, emit its record."""
        lease, self.lease = self.lease, None
        rec, self.rec = self.rec, None
        if lease is not None:
            if rec is not None:
                rec.decision(lease.decision)  # the last one: a retry may have changed it
            lease.release()
        self.head = None
        self.spare, self.rparser = self.rparser, None
        if self.pending:
            self.pending = []
        if rec is not None:
            if rec.outcome is None:
                rec.outcome = "no_server"
            rec.status = status
            rec.end(time.time())  # round(duration, 4) without round()'s decimal string
            self.port.record(rec)

    def _enter(self, phase: str, seconds: float, now: float = -1.0) -> None:
        """Enter `phase`, due `seconds` after `now` (-1: read the clock)."""
        self.phase = phase
        if now < 0.0:
            now = self.now()
        due = self.deadline = now + seconds
        if due < self.armed:  # a later deadline needs no call: the earlier tick re-arms
            self.armed = due
            self.port.arm(due)

    def _arm(self, due: float) -> None:
        if due < self.armed:
            self.armed = due
            self.port.arm(due)

    # -- the server side ----------------------------------------------------------------
    def server_data(self, data: bytes) -> None:
        rp = self.rparser
        if self.head is None or rp is None:
            return
        now = self.last_server = self.now()
        whole = rp.whole(data)  # the usual read: one whole response, out in one write
        if whole is not None:
            head = self._response_head(whole[0])
            body = whole[1]
            self.rec.bytes_out += len(head) + len(body)
            self.port.write(head + body if body else head)
            self._response_done(now)
            return
        try:
            events = rp.feed(data)
        except ProtocolError as exc:
            self._bad_response(exc)
            return
        self._relay(events, now)

    def server_eof(self) -> None:
        if self.head is None or self.rparser is None:
            return
        try:
            events = self.rparser.feed_eof()
        except ProtocolError:
            self._server_gone()
            return
        self._relay(events, self.now())

    def server_lost(self, exc: Exception | None) -> None:
        rp = self.rparser
        if self.head is None or rp is None or rp.complete:
            return
        conn, self.conn = self.conn, None  # its transport is gone
        try:
            events = rp.feed_eof()
        except ProtocolError:
            self._server_gone(reused=conn is not None and conn.reused)
            return
        self._relay(events, self.now())

    def server_write_paused(self) -> None:
        self.server_blocked = True
        self.last_server = self.now()
        self._pause_client()

    def server_write_resumed(self) -> None:
        self.server_blocked = False
        self.last_server = self.now()
        if not self.queue or self.queue[0].__class__ is not RequestHead:
            self._resume_client()

    def _relay(self, events: list, now: float) -> None:
        """What one server read (at `now`) produced goes out in ONE write (head and body together)."""
        out: list[bytes] = []
        rec = self.rec
        assert rec is not None
        for ev in events:
            cls = ev.__class__
            if cls is BodyChunk:
                rec.bytes_out += len(ev.data)
                out.append(encode_chunk(ev.data) if self.chunked_out else ev.data)
            elif cls is ResponseHead:
                if ev.status == 101:  # the parser let it through: the upgrade was asked for
                    switch(self, ev, out)
                    return
                head = self._response_head(ev)
                rec.bytes_out += len(head)  # byte counters include heads (issue 14)
                out.append(head)
            else:  # EndOfMessage
                if self.chunked_out:
                    out.append(encode_last_chunk(ev.trailers))
                if out:
                    self.port.write(out[0] if len(out) == 1 else b"".join(out))
                self._response_done(now)
                return
        if out:
            self.port.write(out[0] if len(out) == 1 else b"".join(out))

    def _response_head(self, head: ResponseHead) -> bytes:
        """The head to send the client (b"" for a 1xx an HTTP/1.0 client must not see)."""
        req = self.head
        assert req is not None and self.rec is not None
        if head.status < 200:  # ResponseHead.informational, without its property call
            return serialize_response_head(head) if self.h_v11 else b""
        extra: list[tuple[bytes, bytes]] = []
        d = self.lease.decision if self.lease is not None else None
        if d is not None:
            if d.set_cookie and d.scope is not None:
                extra.append((b"set-cookie", self._cookie(d)))
            if d.learn_cookie:
                self._learn_cookie(d, head)
        framing = head.framing
        if framing is F_CHUNKED and not self.h_v11:
            framing = F_CLOSE  # an HTTP/1.0 client gets the body de-chunked, then a close
        if framing is F_CLOSE:
            self.close_after = True
        if self.close_after or self.parser._error is not None:
            extra.append(_CLOSE)
            self.close_after = True
        self.chunked_out = framing is F_CHUNKED
        self.rec.status = head.status
        self.response_started = True
        return serialize_response_head(head, extra, True, framing)  # positional: no kwargs dict per call

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

    def _response_done(self, now: float) -> None:
        """The response ended (at `now`): the server connection goes back, the next request may come."""
        upgrade = self.head is not None and self.h_upgrade
        if upgrade:
            self.parser.not_switched()  # no 101: what the client sent since is HTTP again
        conn, self.conn = self.conn, None
        rp = self.rparser
        if conn is not None:
            if rp is None or rp.must_close or not self.request_done:
                conn.close()
            else:
                self.port.give_back(conn)
        request_done = self.request_done
        self._finish(self.rec.status if self.rec else 0)
        if self.close_after or not request_done or (self.eof_seen and not self.queue):
            self.phase = CLOSED
            self.port.close()
            return
        if self.parser.idle:
            self._enter(IDLE, self.t_idle, now)
        else:  # the next request's head has begun to arrive: it gets `timeout http-request`
            self._enter(HEAD, self.t_head, now)
        if self.paused:
            self._resume_client()
        if self.queue:
            self._pump(now)
        if upgrade and self.parser.buffered and self.head is None and self.phase is not CLOSED:
            self.client_data(b"")  # the bytes held since the upgrade request, parsed now

    def _server_gone(self, reused: bool | None = None) -> None:
        """The server closed before the response ended."""
        conn = self.conn
        was_pooled = (conn is not None and conn.reused) if reused is None else reused
        self._drop_conn()
        if self.response_started:
            self._finish(self.rec.status if self.rec else 0)
            self.phase = CLOSED
            self.port.close()  # truncated: what was relayed, then a close (SPEC §5)
            return
        assert self.head is not None
        if was_pooled and self.head.framing is F_NONE and not self.retried and self.lease is not None:
            # a reused keep-alive connection closed under us before any byte: safe to retry
            self.retried = True
            self.rparser = ResponseParser(self.head.method, self.head.upgrade)
            self.port.connect(self.lease)
            return
        self._reply_error(502)

    def _bad_response(self, exc: ProtocolError) -> None:
        d = self.lease.decision if self.lease is not None else None
        log.warning("invalid response from %s: %s", d.member.rserver if d and d.member else "?", exc.reason)
        self._drop_conn()
        if self.response_started:
            self._finish(self.rec.status if self.rec else 0)
            self.phase = CLOSED
            self.port.abort_transport()
            return
        self._reply_error(502)

