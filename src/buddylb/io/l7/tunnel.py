"""An upgraded L7 connection (WebSocket or any `Upgrade`), sans-IO: a byte relay both ways.

Issue 16 item 1.  When the server answers an upgrade request with a valid `101` (the
parsers check the offer: http/upgrade.py), `switch` ends the HTTP exchange and hands
the client connection, its server connection, the lease and the request's flow record
to a `Tunnel`, then tells the port (`port.tunnel(t)`): from then on the port sends the
client's events to the tunnel, and the server connection's owner is the tunnel.  The
exchange machine itself stays an HTTP/1.1 machine; this module is the only place that
knows about tunnels.

What the relay does, as `io/l4.py` does for an L4 VIP:
- bytes are passed on as they come, first those each side sent after the switch and
  before we saw it (held by the request parser; after the 101 head in the server's read);
- flow control: a side whose write buffer is full pauses reading the other side, and
  resumes it when it drains;
- half-close: EOF one way is passed on (write_eof) and the other way stays open; on a
  TLS VIP the client side cannot half-close, so the server's EOF closes it (after what
  was written is flushed);
- `timeout tunnel` (SPEC §5, default 1 h): no byte in either direction for that long
  aborts both sides; each read is stamped with `port.now()`, the deadline rides the
  port's one timer;
- the end (either side gone, the timeout, a purge): the other side is closed, the lease
  released once, and the request's record (status 101) is written with the bytes both
  ways (heads included) and the duration from the request to the end.
Like the exchange it never touches I/O: every action is a call on the port or on the
server connection (`write`, `write_eof`, `pause`, `resume`, `close`, `abort`).
"""
from __future__ import annotations

import time
from typing import Any

from buddylb.http.response import ResponseHead, serialize_response_head
from buddylb.io.l7.timers import TUNNEL

__all__ = ["Tunnel", "switch"]


def switch(ex: Any, head: ResponseHead, out: list[bytes]) -> None:
    """The server switched protocols: send the client `out` (what this read produced
    before the 101), the 101 head and the server's first bytes of the new protocol, and
    hand everything to a `Tunnel`.  `ex` is the `Exchange` (its fields are read and
    cleared here: after this it holds no request)."""
    port, rec, conn, lease = ex.port, ex.rec, ex.conn, ex.lease
    extra = [(b"connection", b"upgrade"), (b"upgrade", head.header(b"upgrade") or b"")]
    d = lease.decision if lease is not None else None
    if d is not None:
        if d.set_cookie and d.scope is not None:
            extra.append((b"set-cookie", ex._cookie(d)))  # the handshake sets the sticky cookie too
        if d.learn_cookie:
            ex._learn_cookie(d, head)
    data = serialize_response_head(head, extra)
    rec.status = 101
    rec.bytes_out += len(data)
    out.append(data)
    server_rest = ex.rparser.rest()
    if server_rest:
        rec.bytes_out += len(server_rest)
        out.append(server_rest)
    port.write(b"".join(out))
    client_rest = ex.parser.switched()
    t = Tunnel(port, conn, lease, rec, ex.snap.timeouts["tunnel"], ex.tls)
    ex.conn = ex.lease = ex.rec = ex.head = ex.rparser = None
    ex.phase = TUNNEL
    conn.owner = t
    port.tunnel(t)
    if client_rest:
        t.client_data(client_rest)
    if ex.server_blocked:
        t.server_write_paused()  # already paused: stays so until the server drains
    elif ex.paused:
        ex.paused = False
        port.resume_reading()  # paused while the upgrade was pending (Exchange._begin)
    if ex.eof_seen:  # not while paused: only a client that half-closed with its request
        t.client_eof()


class Tunnel:
    """The byte relay of one upgraded client connection (see the module header)."""

    __slots__ = ("port", "conn", "lease", "rec", "limit", "tls", "last", "armed",
                 "client_done", "server_done", "ended")

    def __init__(self, port: Any, conn: Any, lease: Any, rec: Any, limit: float, tls: bool) -> None:
        self.port = port
        self.conn = conn
        self.lease = lease
        self.rec = rec
        self.limit = limit  # `timeout tunnel`
        self.tls = tls
        self.last = port.now()  # the last byte either way
        self.armed = self.last + limit
        self.client_done = self.server_done = False  # EOF received from that side
        self.ended = False
        port.arm(self.armed)

    # -- the client's events (the port calls them once `port.tunnel(self)` ran) --------------
    def client_data(self, data: bytes) -> None:
        self.last = self.port.now()
        self.rec.bytes_in += len(data)
        if self.conn is not None:
            self.conn.write(data)

    def client_eof(self) -> bool:
        """True: keep the client transport half-open (the server may still talk)."""
        self.client_done = True
        if self.server_done or self.conn is None:
            self.port.close()
            return False
        self.conn.write_eof()
        return not self.tls  # a TLS transport cannot stay half-open

    def client_write_paused(self) -> None:
        if self.conn is not None:
            self.conn.pause()  # the client does not read: stop reading the server

    def client_write_resumed(self) -> None:
        if self.conn is not None:
            self.conn.resume()

    def lost(self) -> None:
        """The client connection is gone: close the server side, write the record."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()  # what the client sent last is flushed, then a close
        self._end()

    def abort(self) -> None:
        """fail-action purge, drain deadline: both sides at once."""
        self._abort("aborted")

    def tick(self, now: float) -> None:
        if self.ended:
            return
        due = self.last + self.limit
        if now >= due:
            self._abort("tunnel timeout")
            return
        self.armed = due
        self.port.arm(due)

    # -- the server connection's events (the tunnel is its owner) ------------------------------
    def server_data(self, data: bytes) -> None:
        self.last = self.port.now()
        self.rec.bytes_out += len(data)
        self.port.write(data)

    def server_eof(self) -> None:
        self.server_done = True
        if self.client_done or self.tls:
            self.port.close()  # flushes what the server sent, then closes
        else:
            self.port.write_eof()

    def server_lost(self, exc: Exception | None) -> None:
        """The server connection is gone (closed or reset): close the client side."""
        self.conn = None
        if exc is not None and self.rec.error is None:
            self.rec.error = "server connection lost"
        self.port.close()

    def server_write_paused(self) -> None:
        self.port.pause_reading()  # the server does not read: stop reading the client

    def server_write_resumed(self) -> None:
        self.port.resume_reading()

    # -- the end ------------------------------------------------------------------------------
    def _abort(self, why: str) -> None:
        if self.rec.error is None:
            self.rec.error = why
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort()
        self.port.abort_transport()
        self._end()

    def _end(self) -> None:
        """Once: release the lease, write the record (bytes both ways, the duration)."""
        if self.ended:
            return
        self.ended = True
        lease, self.lease = self.lease, None
        if lease is not None:
            self.rec.decision(lease.decision)
            lease.release()
        rec = self.rec
        rec.end(time.time())  # from the upgrade request's arrival, like every L7 record
        self.port.record(rec)
