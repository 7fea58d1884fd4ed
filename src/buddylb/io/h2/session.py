"""The HTTP/2 connection machine of a TLS VIP, sans-IO: bytes in, actions on a port out.
This module is over 400 lines because stream bookkeeping, flow control and the
defences all read the same per-connection state; the field rules are `fields.py`.

Owns one h2 client connection (ALPN): the `h2` library's state machine, the streams
and what each owes the client, the defences.  No socket, no loop: actions go to `port`
(protocol.H2Client, or a fake in tests), time is `port.now()`.

A stream is one request of the L7 exchange machine: its checked fields become an HTTP/1.1
head (`fields.check_request`) for the `Exchange` of `port.open_exchange` (DATA chunked
without content-length); its HTTP/1.1 response is parsed again and sent as HEADERS /
DATA / trailers: decided, stuck, pooled, logged and counted like an HTTP/1.1 request.

Flow control.  Toward the client: DATA never exceeds the client's windows; what waits
for a window is held per stream; past `STREAM_BUFFER` bytes the exchange is told the client
is not reading (it pauses the server connection; `timeout client` runs).  From the client: each
stream's window is handed back only while its exchange reads (an exchange that
pauses, e.g. while connecting, holds the window shut: at most `INITIAL_WINDOW` bytes
wait per stream); the connection window is large so a slow stream never blocks others.

Defences (each ends only the offending connection: GOAWAY, then close):
- rapid reset (CVE-2023-44487) and "made you reset": more than `RESET_LIMIT` streams
  reset by the client, or by us for its malformed requests, within `WINDOW_S`
  -> ENHANCE_YOUR_CALM;
- SETTINGS / PING / PRIORITY / empty-frame floods: more than `CONTROL_LIMIT` such frames
  within `WINDOW_S`, or more than `UNREAD_LIMIT` while the client does not read our
  ACKs (its transport is full) -> ENHANCE_YOUR_CALM;
- CONTINUATION floods: a header block is bounded by `HEADER_BLOCK_LIMIT` bytes (and by
  the library's 64 frames), the decoded list by `MAX_HEADER_LIST` -> ENHANCE_YOUR_CALM;
- over `MAX_STREAMS` concurrent streams, bad framing, a content-length DATA contradicts:
  the library's connection error (PROTOCOL_ERROR; RFC 9113 §5.4.1 allows it).
"""
from __future__ import annotations

import logging
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from buddylb.errors import ProtocolError
from buddylb.http.request import encode_chunk, encode_last_chunk
from buddylb.http.response import ResponseHead, ResponseParser
from buddylb.http.framing import BodyChunk
from buddylb.io.h2.fields import Malformed, check_request, check_trailers, response_fields
from buddylb.io.lograte import RATE

log = logging.getLogger("buddylb.h2")

MAX_STREAMS = 100  # SETTINGS_MAX_CONCURRENT_STREAMS
MAX_HEADER_LIST = 32 * 1024  # SETTINGS_MAX_HEADER_LIST_SIZE: SPEC §5's header-section limit
HARD_HEADER_LIST = 48 * 1024  # what the decoder accepts before a connection error (the 431 lies below)
HEADER_BLOCK_LIMIT = 64 * 1024  # compressed bytes of one HEADERS + CONTINUATION block
INITIAL_WINDOW = 65535  # SETTINGS_INITIAL_WINDOW_SIZE: per-stream request bytes we hold at most
CONNECTION_WINDOW = 16 * 1024 * 1024  # the connection window: a paused stream never starves others
STREAM_BUFFER = 256 * 1024  # response bytes held per stream before the server is paused
WINDOW_S = 10.0
RESET_LIMIT = 200  # resets per WINDOW_S (a browser cancels a few; an attack thousands per second)
CONTROL_LIMIT = 1000  # SETTINGS / PING / PRIORITY / empty DATA / unknown frames per WINDOW_S
UNREAD_LIMIT = 64  # control frames received while the client does not read our ACKs


class Stream:
    """What one stream owes: the exchange serving it and the response on its way out."""

    __slots__ = ("id", "ex", "rparser", "out", "eom", "trailers", "chunked", "paused", "unacked",
                 "blocked", "sent_end", "req_trailers", "client_done")

    def __init__(self, stream_id: int, method: bytes, chunked: bool) -> None:
        self.id = stream_id
        self.ex: Any = None  # the Exchange; None once it let go of the stream
        self.rparser = ResponseParser(method)
        self.out = bytearray()  # response body bytes waiting for the client's window
        self.eom = False  # the response is complete (what is in `out` is the rest)
        self.trailers: list | None = None
        self.chunked = chunked  # the request body goes to the parser chunked
        self.paused = False  # the exchange stopped reading: hold the window
        self.unacked = 0
        self.blocked = False  # we told the exchange the client does not read
        self.sent_end = False  # END_STREAM (or RST_STREAM) sent
        self.req_trailers: list = []
        self.client_done = False  # the client ended its side


class Session:
    """One h2 client connection; `port`: write, close, now, idle, peer, open/close_exchange, record_malformed."""

    def __init__(self, port: Any) -> None:
        self.port = port
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False,
            normalize_outbound_headers=False)
        conn = self.h2 = h2.connection.H2Connection(config)
        S = h2.settings.SettingCodes
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            S.MAX_CONCURRENT_STREAMS: MAX_STREAMS, S.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            S.INITIAL_WINDOW_SIZE: INITIAL_WINDOW})
        conn.decoder.max_header_list_size = HARD_HEADER_LIST
        self.streams: dict[int, Stream] = {}
        self.window_start = 0.0
        self.resets = self.controls = self.unread = 0
        self.going_away = False  # GOAWAY sent: no new streams
        self.closed = False
        self.batching = False  # inside data_received: one flush at its end
        self.write_blocked = False  # the transport is full (the client does not read)
        self.error: str | None = None  # why the connection was ended by us
        self.header_priority: Any = None  # the PriorityUpdated of the last HEADERS (not a PRIORITY frame)

    def start(self) -> None:
        self.window_start = self.port.now()
        self.h2.initiate_connection()
        if CONNECTION_WINDOW > 65535:
            self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._flush()

    # -- bytes from the client -------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        conn = self.h2
        self.batching = True
        try:
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:  # the library prepared its GOAWAY
                self._end(str(exc) or exc.__class__.__name__)
                return
            for ev in events:
                self._event(ev)
                if self.closed:
                    return
            self._check_header_block()
        finally:
            self.batching = False
        self._flush()

    def _event(self, ev: Any) -> None:
        cls = ev.__class__
        E = h2.events
        if cls is E.RequestReceived:
            self.header_priority = ev.priority_updated  # a browser's HEADERS carry one: not a flood
            self._request(ev.stream_id, ev.headers, ev.stream_ended is not None)
        elif cls is E.DataReceived:
            self._data(ev.stream_id, ev.data, ev.flow_controlled_length, ev.stream_ended is not None)
        elif cls is E.StreamEnded:
            self._client_ended(ev.stream_id)
        elif cls is E.TrailersReceived:
            self._trailers(ev.stream_id, ev.headers)
        elif cls is E.WindowUpdated:
            for st in list(self.streams.values()) if ev.stream_id == 0 else [self.streams.get(ev.stream_id)]:
                if st is not None and not st.sent_end:
                    self._send_body(st)
        elif cls is E.StreamReset:
            self._reset_by_client(ev.stream_id)
        elif cls is E.ConnectionTerminated:
            # The client's GOAWAY: the h2 library moves its connection to CLOSED on reading one
            # and refuses to send anything after it, so the open streams cannot be answered
            # through it; their exchanges end now (a response arriving later raised inside the
            # server connection's callback: "Fatal error on transport" at the end of h2load runs).
            self.going_away = True
            self._end(None)
        elif cls in (E.RemoteSettingsChanged, E.PingReceived, E.PriorityUpdated, E.UnknownFrameReceived):
            if ev is self.header_priority:
                return
            for st in list(self.streams.values()) if cls is E.RemoteSettingsChanged else ():
                self._send_body(st)  # SETTINGS_INITIAL_WINDOW_SIZE may have opened windows
            self._control()

    def _request(self, sid: int, headers: list, ended: bool) -> None:
        if self.going_away:
            self._reset(sid, ErrorCodes.REFUSED_STREAM)
            return
        try:
            req = check_request(headers, ended)
        except Malformed as exc:
            self._malformed(sid, str(exc))
            return
        st = Stream(sid, req.method, req.body and not req.has_length)
        st.client_done = ended
        self.streams[sid] = st
        ex = self.port.open_exchange(st)  # None: it answered at once (VIP out of service)
        if ex is not None:
            ex.client_data(req.head)
        if ended and st.ex is not None:
            st.ex.client_eof()

    def _data(self, sid: int, data: bytes, flow_len: int, ended: bool) -> None:
        st = self.streams.get(sid)
        if not data and not ended:
            self._control()  # empty DATA frames: a flood pattern (CVE-2019-9518)
        if st is None or st.ex is None:
            self._ack(sid, flow_len)  # a stream we reset or answered: only the connection window
            return
        if data:
            st.ex.client_data(encode_chunk(data) if st.chunked else data)
        if st.paused:
            st.unacked += flow_len
        else:
            self._ack(sid, flow_len)

    def _trailers(self, sid: int, headers: list) -> None:
        st = self.streams.get(sid)
        if st is None:
            return
        try:
            st.req_trailers = check_trailers(headers)
        except Malformed as exc:
            self._malformed(sid, str(exc))

    def _client_ended(self, sid: int) -> None:
        st = self.streams.get(sid)
        if st is None or st.client_done:
            return
        st.client_done = True
        if st.ex is not None:
            if st.chunked:
                st.ex.client_data(encode_last_chunk(st.req_trailers))
            if st.ex is not None:
                st.ex.client_eof()
        self._maybe_done(st)

    def _ack(self, sid: int, n: int) -> None:
        if n:
            self.h2.acknowledge_received_data(n, sid)

    def _forget(self, st: Stream) -> None:
        """A stream leaves: what it held back still counts in the connection window."""
        n, st.unacked = st.unacked, 0
        if n and not self.closed:
            self._ack(st.id, n)

    def _reset_by_client(self, sid: int) -> None:
        st = self.streams.pop(sid, None)
        if st is not None:
            st.sent_end = True
            self._forget(st)
            ex, st.ex = st.ex, None
            if ex is not None:
                self.port.close_exchange(st, ex)  # the request ends here (499, its server connection dropped)
        self._count_reset()
        self._idle_check()

    def _malformed(self, sid: int, reason: str) -> None:
        RATE.note("h2_malformed", f"HTTP/2 client {self.port.peer}: malformed request: {reason}", logging.INFO,
                  "HTTP/2 streams reset for a malformed request")
        self.port.record_malformed(reason)
        st = self.streams.pop(sid, None)
        if st is not None:
            self._forget(st)
            ex, st.ex = st.ex, None
            if ex is not None:
                self.port.close_exchange(st, ex)
        self._reset(sid, ErrorCodes.PROTOCOL_ERROR)
        self._count_reset()

    # -- defences ----------------------------------------------------------------------------
    def _window(self) -> None:
        now = self.port.now()
        if now - self.window_start >= WINDOW_S:
            self.window_start = now
            self.resets = self.controls = 0

    def _count_reset(self) -> None:
        self._window()
        self.resets += 1
        if self.resets > RESET_LIMIT:
            self._calm(f"rapid reset: more than {RESET_LIMIT} streams reset within {WINDOW_S:g} s")

    def _control(self) -> None:
        self._window()
        self.controls += 1
        if self.write_blocked:
            self.unread += 1
        if self.controls > CONTROL_LIMIT:
            self._calm(f"control frame flood: more than {CONTROL_LIMIT} SETTINGS/PING/PRIORITY/empty "
                       f"frames within {WINDOW_S:g} s")
        elif self.unread > UNREAD_LIMIT:
            self._calm(f"control frame flood: {UNREAD_LIMIT} frames sent while not reading our ACKs")

    def _check_header_block(self) -> None:
        """A header block still open after this read: bounded (CONTINUATION flood)."""
        pending = getattr(self.h2.incoming_buffer, "_headers_buffer", None)
        if pending and sum(len(f.data) for f in pending) > HEADER_BLOCK_LIMIT:
            self._calm(f"CONTINUATION flood: a header block over {HEADER_BLOCK_LIMIT // 1024} KiB")

    def _calm(self, reason: str) -> None:
        if self.closed:
            return
        RATE.note("h2_calm", f"HTTP/2 client {self.port.peer}: {reason}; connection closed", logging.WARNING,
                  "HTTP/2 connections closed for an attack pattern")
        self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self._end(reason, note=False)  # logged above, as a warning

    # -- the exchange's side of a stream (from protocol.StreamPort) ------------------------------
    def stream_write(self, st: Stream, data: bytes) -> None:
        """Bytes the exchange wrote: an HTTP/1.1 response, parsed again into h2 frames."""
        if st.sent_end or self.closed:
            return
        try:
            events = st.rparser.feed(data)
        except ProtocolError as exc:  # our own serialisation: never expected
            log.error("h2 stream %d: unreadable response from the exchange: %s", st.id, exc.reason)
            self.stream_abort(st)
            return
        try:
            self._response_events(st, events)
        except h2.exceptions.StreamClosedError:  # the library closed it meanwhile: as if reset
            self._reset_by_client(st.id)
            if not self.batching:
                self._flush()

    def _response_events(self, st: Stream, events: list) -> None:
        conn = self.h2
        n = len(events)
        for i, ev in enumerate(events):
            cls = ev.__class__
            if cls is BodyChunk:
                st.out += ev.data
            elif cls is ResponseHead:
                if ev.informational:
                    if ev.status != 101:
                        conn.send_headers(st.id, response_fields(ev.status, ev.headers))
                    continue
                # a response without a body ends with its HEADERS (one frame, not two)
                bare = i + 1 < n and events[i + 1].__class__ is not BodyChunk and not events[i + 1].trailers
                conn.send_headers(st.id, response_fields(ev.status, ev.headers), end_stream=bare)
                if bare:
                    st.sent_end = st.eom = True
                    self._after_response(st)
                    return
            else:  # EndOfMessage
                st.eom = True
                st.trailers = response_fields(0, ev.trailers)[1:] if ev.trailers else None
        self._send_body(st)

    def _send_body(self, st: Stream) -> None:
        conn = self.h2
        out = st.out
        while out and not st.sent_end:
            room = min(conn.local_flow_control_window(st.id), conn.max_outbound_frame_size)
            if room <= 0:
                break
            chunk = bytes(out[:room])
            del out[:room]
            conn.send_data(st.id, chunk, end_stream=st.eom and not out and st.trailers is None)
            if st.eom and not out and st.trailers is None:
                st.sent_end = True
        if st.eom and not out and not st.sent_end:
            if st.trailers is not None:
                conn.send_headers(st.id, st.trailers, end_stream=True)
            else:
                conn.end_stream(st.id)
            st.sent_end = True
        if st.sent_end:
            self._after_response(st)
        elif st.ex is not None:
            if len(out) > STREAM_BUFFER and not st.blocked:
                st.blocked = True
                st.ex.client_write_paused()  # bounded: the exchange pauses its server connection
            elif st.blocked and len(out) <= STREAM_BUFFER // 2 and not self.write_blocked:
                st.blocked = False
                st.ex.client_write_resumed()
        if not self.batching:
            self._flush()

    def _after_response(self, st: Stream) -> None:
        """The response is all out: a client still sending is asked to stop (RFC 9113 §8.1)."""
        if not st.client_done:
            st.client_done = True
            self._reset(st.id, ErrorCodes.NO_ERROR)
        self._maybe_done(st)
        if not self.batching:
            self._flush()

    def stream_end(self, st: Stream) -> None:
        """The exchange closed the stream's 'connection': the response ends here."""
        if st.ex is None:
            return
        st.ex = None
        if not st.sent_end and not st.eom:
            try:
                events = st.rparser.feed_eof()  # a close-delimited body ends now
            except ProtocolError:
                self._reset(st.id, ErrorCodes.INTERNAL_ERROR)  # truncated: never a fabricated end
                st.sent_end = True
                events = []
            if events:
                self._response_events(st, events)
        self._maybe_done(st)
        if not self.batching:
            self._flush()

    def stream_abort(self, st: Stream) -> None:
        """The exchange aborted (server died mid-response, inactivity): reset the stream."""
        st.ex = None
        if not st.sent_end:
            st.sent_end = True
            self._reset(st.id, ErrorCodes.INTERNAL_ERROR)
        self._maybe_done(st)
        if not self.batching:
            self._flush()

    def stream_pause(self, st: Stream) -> None:  # the exchange holds: so does the stream's window
        st.paused = True

    def stream_resume(self, st: Stream) -> None:
        st.paused = False
        n, st.unacked = st.unacked, 0
        if n and not self.closed:
            self._ack(st.id, n)  # a finished stream's bytes still count in the connection window
            if not self.batching:
                self._flush()

    def _maybe_done(self, st: Stream) -> None:
        if st.ex is None and st.sent_end and self.streams.get(st.id) is st:
            del self.streams[st.id]
            self._forget(st)
            self._idle_check()

    def _idle_check(self) -> None:
        if not self.streams:
            if self.going_away:
                self._end(None)
            else:
                self.port.idle()

    def _reset(self, sid: int, code: ErrorCodes) -> None:
        try:
            self.h2.reset_stream(sid, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass  # already closed both ways: nothing to reset

    # -- the transport -----------------------------------------------------------------------------
    def write_paused(self) -> None:
        """The client does not read what we write: every exchange pauses its server."""
        self.write_blocked = True
        for st in list(self.streams.values()):
            if not st.blocked and st.ex is not None:
                st.blocked = True
                st.ex.client_write_paused()

    def write_resumed(self) -> None:
        self.write_blocked = False
        self.unread = 0
        for st in list(self.streams.values()):
            if st.blocked and st.ex is not None and len(st.out) <= STREAM_BUFFER // 2:
                st.blocked = False
                st.ex.client_write_resumed()

    def goaway(self) -> None:
        """Reload or stop: no new streams; those open finish, then the connection closes."""
        if self.going_away or self.closed:
            return
        self.going_away = True
        # written beside the library, not by its close_connection: that one moves the
        # connection to CLOSED, and the open streams could no longer send their responses
        self._flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.h2.highest_inbound_stream_id
        frame.error_code = ErrorCodes.NO_ERROR
        self.port.write(frame.serialize())
        if not self.streams:
            self._end(None)

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.port.write(data)

    def _end(self, error: str | None, note: bool = True) -> None:
        """Close the connection: what the library queued (GOAWAY) goes out first."""
        if self.closed:
            return
        self.error = error
        if error is not None and note:
            RATE.note("h2_error", f"HTTP/2 client {self.port.peer}: connection closed: {error}", logging.INFO,
                      "HTTP/2 connections closed for a protocol error or an attack pattern")
        self._flush()
        self.closed = True
        streams, self.streams = self.streams, {}
        for st in streams.values():
            ex, st.ex = st.ex, None
            if ex is not None:
                self.port.close_exchange(st, ex)
        self.port.close()

    def lost(self) -> None:
        """The transport is gone: every open stream's request ends (499)."""
        self.closed = True
        streams, self.streams = self.streams, {}
        for st in streams.values():
            ex, st.ex = st.ex, None
            if ex is not None:
                self.port.close_exchange(st, ex)
