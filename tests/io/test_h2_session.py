"""The HTTP/2 session machine without I/O: a fake port and clock, the `h2` library as the
client.  Flow control bounds what is held per stream; the defences count per window."""
from __future__ import annotations

import h2.config
import h2.connection
import h2.events
from h2.settings import SettingCodes
from hyperframe.frame import Frame

from buddylb.io.h2 import session as sess
from buddylb.io.h2.session import Session

REQ = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a.example")]


class FakeExchange:
    def __init__(self, port: "FakePort", st) -> None:
        self.port, self.st = port, st
        self.data: list[bytes] = []
        self.eof = self.lost_ = False
        self.paused = 0
        self.resumed = 0

    def client_data(self, data: bytes) -> None:
        self.data.append(data)

    def client_eof(self) -> bool:
        self.eof = True
        return True

    def client_write_paused(self) -> None:
        self.paused += 1

    def client_write_resumed(self) -> None:
        self.resumed += 1

    # what the exchange would do: write the response, then close its side
    def respond(self, raw: bytes, end: bool = True) -> None:
        self.port.session.stream_write(self.st, raw)
        if end:
            self.port.session.stream_end(self.st)


class FakePort:
    peer = "127.0.0.9"

    def __init__(self) -> None:
        self.t = 100.0
        self.out = bytearray()
        self.closed = False
        self.exchanges: dict[int, FakeExchange] = {}
        self.idles = 0
        self.session = Session(self)
        self.malformed: list[str] = []

    def now(self) -> float:
        return self.t

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def idle(self) -> None:
        self.idles += 1

    def open_exchange(self, st) -> FakeExchange:
        ex = self.exchanges[st.id] = FakeExchange(self, st)
        st.ex = ex
        return ex

    def close_exchange(self, st, ex) -> None:
        ex.lost_ = True

    def record_malformed(self, reason: str) -> None:
        self.malformed.append(reason)


class Client:
    def __init__(self, window: int = 65535) -> None:
        self.port = FakePort()
        self.port.session.start()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False))
        self.h2.initiate_connection()
        self.h2.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.events: list = []
        self.send()

    def send(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.port.session.data_received(data)
        self.receive()

    def receive(self) -> list:
        out, self.port.out = bytes(self.port.out), bytearray()
        evs = self.h2.receive_data(out) if out else []
        self.events += evs
        if self.h2.data_to_send():
            self.send()
        return evs

    def body(self, sid: int) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, h2.events.DataReceived) and e.stream_id == sid)


def test_a_request_reaches_the_exchange_as_http1_and_the_response_comes_back():
    c = Client()
    c.h2.send_headers(1, REQ + [(b"cookie", b"a=1"), (b"cookie", b"b=2")], end_stream=True)
    c.send()
    ex = c.port.exchanges[1]
    assert ex.data[0].startswith(b"GET / HTTP/1.1\r\nhost: a.example\r\n") and b"cookie: a=1; b=2\r\n" in ex.data[0]
    assert ex.eof
    ex.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\nhello")
    c.receive()
    resp = next(e for e in c.events if isinstance(e, h2.events.ResponseReceived))
    assert resp.headers[0] == (b":status", b"200") and (b"x-a", b"1") in resp.headers
    assert not any(n == b"connection" for n, _ in resp.headers)
    assert c.body(1) == b"hello" and any(isinstance(e, h2.events.StreamEnded) for e in c.events)
    assert not c.port.session.streams and c.port.idles == 1


def test_responses_wait_for_the_client_window_and_the_server_is_paused_past_the_bound():
    c = Client(window=1000)
    c.h2.send_headers(1, REQ, end_stream=True)
    c.send()
    ex = c.port.exchanges[1]
    size = 3 * sess.STREAM_BUFFER
    ex.respond(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size, end=False)
    c.receive()
    assert len(c.body(1)) == 1000  # never past the client's stream window
    assert ex.paused == 1 and ex.resumed == 0  # more than STREAM_BUFFER held: the server is paused
    got = 1000
    for _ in range(2000):
        if got >= size:
            break
        c.h2.increment_flow_control_window(16384, 1)
        c.h2.increment_flow_control_window(16384)
        c.send()
        got = len(c.body(1))
    assert got == size and ex.resumed == 1
    ex.respond(b"", end=True)
    assert not c.port.session.streams


def test_a_paused_exchange_holds_the_stream_window():
    c = Client()
    c.h2.send_headers(1, [(b":method", b"POST")] + REQ[1:], end_stream=False)
    c.send()
    st = c.port.session.streams[1]
    c.port.session.stream_pause(st)
    window_before = c.h2.local_flow_control_window(1)
    for _ in range(3):  # past half the window: unpaused, the library would have sent WINDOW_UPDATE
        c.h2.send_data(1, b"a" * 15000)
        c.send()
    assert c.h2.local_flow_control_window(1) == window_before - 45000  # no WINDOW_UPDATE while paused
    c.port.session.stream_resume(st)
    c.receive()
    assert c.h2.local_flow_control_window(1) > window_before - 45000  # handed back on resume
    assert b"".join(c.port.exchanges[1].data[1:]) == (b"3a98\r\n" + b"a" * 15000 + b"\r\n") * 3  # chunked


def test_rapid_reset_is_counted_per_window():
    c = Client()
    sid = 1
    for burst in range(3):  # below the bound in each window: served
        for _ in range(sess.RESET_LIMIT - 10):
            c.h2.send_headers(sid, REQ, end_stream=True)
            c.h2.reset_stream(sid)
            sid += 2
        c.send()
        assert not c.port.closed
        c.port.t += sess.WINDOW_S
    for _ in range(sess.RESET_LIMIT + 1):  # past it within one window
        c.h2.send_headers(sid, REQ, end_stream=True)
        c.h2.reset_stream(sid)
        sid += 2
    c.send()
    assert c.port.closed
    goaway = [e for e in c.events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway and goaway[0].error_code == 11  # ENHANCE_YOUR_CALM
    assert all(ex.lost_ for ex in c.port.exchanges.values())


def test_malformed_request_resets_only_its_stream():
    c = Client()
    c.h2.send_headers(1, REQ + [(b"connection", b"close")], end_stream=True)
    c.h2.send_headers(3, REQ, end_stream=True)
    c.send()
    resets = [e for e in c.events if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(1, 1)]
    assert 1 not in c.port.exchanges and 3 in c.port.exchanges and c.port.malformed


def frames(data: bytes) -> list:
    out = []
    while len(data) >= 9:
        f, length = Frame.parse_frame_header(memoryview(data[:9]))
        f.parse_body(memoryview(data[9:9 + length]))
        out.append(f)
        data = data[9 + length:]
    return out


def test_goaway_lets_open_streams_finish():
    c = Client()
    c.h2.send_headers(1, REQ, end_stream=True)
    c.send()
    c.port.session.goaway()
    c.port.exchanges[1].respond(b"HTTP/1.1 204 No Content\r\n\r\n")
    # read raw: the h2 library as a client stops at a GOAWAY, real clients finish their streams
    sent = frames(bytes(c.port.out))
    assert [type(f).__name__ for f in sent] == ["GoAwayFrame", "HeadersFrame"]
    assert sent[0].error_code == 0 and sent[0].last_stream_id == 1
    assert sent[1].stream_id == 1 and "END_STREAM" in sent[1].flags
    assert c.port.closed  # its last stream done: closed


def test_client_goaway_with_a_stream_open_ends_its_exchange():
    """After the client's GOAWAY the library sends nothing more: the open stream's exchange is
    closed at once, and its response, arriving later, is dropped without an exception."""
    c = Client()
    c.h2.send_headers(1, REQ, end_stream=True)
    c.send()
    ex = c.port.exchanges[1]
    c.h2.close_connection()  # the client's GOAWAY (error 0), stream 1 still unanswered
    c.send()
    assert c.port.closed and ex.lost_
    ex.respond(b"HTTP/1.1 204 No Content\r\n\r\n")  # late: must not raise


def test_priority_in_headers_is_not_a_control_frame():
    """Browsers send a priority with every HEADERS: many requests are no PRIORITY flood."""
    c = Client()
    sid = 1
    for _ in range(3):
        for _ in range(90):
            c.h2.send_headers(sid, REQ, end_stream=True, priority_weight=200, priority_depends_on=0)
            c.port.session.data_received(c.h2.data_to_send())
            c.port.exchanges[sid].respond(b"HTTP/1.1 204 No Content\r\n\r\n")
            c.receive()
            sid += 2
        assert c.port.session.controls < 10
    assert not c.port.closed
    c.h2.prioritize(sid, weight=10)  # a PRIORITY frame alone counts
    c.send()
    assert c.port.session.controls >= 1


def test_informational_then_final_response_and_trailers():
    c = Client()
    c.h2.send_headers(1, [(b":method", b"POST")] + REQ[1:] + [(b"expect", b"100-continue")], end_stream=False)
    c.send()
    ex = c.port.exchanges[1]
    assert b"expect: 100-continue\r\n" in ex.data[0] and b"transfer-encoding: chunked\r\n" in ex.data[0]
    ex.respond(b"HTTP/1.1 100 Continue\r\n\r\n", end=False)
    c.receive()
    assert any(isinstance(e, h2.events.InformationalResponseReceived) for e in c.events)
    c.h2.send_data(1, b"abc", end_stream=True)
    c.send()
    assert ex.data[-1] == b"0\r\n\r\n" and ex.eof
    ex.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
               b"3\r\nxyz\r\n0\r\nx-sum: 42\r\n\r\n")
    c.receive()
    assert c.body(1) == b"xyz"
    trailers = next(e for e in c.events if isinstance(e, h2.events.TrailersReceived))
    assert trailers.headers == [(b"x-sum", b"42")]
    final = next(e for e in c.events if isinstance(e, h2.events.ResponseReceived))
    assert (b"transfer-encoding", b"chunked") not in final.headers


def test_a_stream_ending_while_paused_gives_its_bytes_back_to_the_connection(monkeypatch):
    """Bytes a paused stream held count in the connection window even when the stream
    ends without resuming (an error answer): else the window shrinks for good."""
    monkeypatch.setattr(sess, "CONNECTION_WINDOW", 65535)  # no headroom: a leak shows at once
    c = Client()
    for sid in (1, 3):
        c.h2.send_headers(sid, [(b":method", b"POST")] + REQ[1:], end_stream=False)
        c.send()
        c.port.session.stream_pause(c.port.session.streams[sid])
        for _ in range(2):
            c.h2.send_data(sid, b"a" * 12000)
            c.send()
        c.port.exchanges[sid].respond(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        c.receive()
        assert not c.port.session.streams
    assert c.h2.outbound_flow_control_window > 65535 - 48000  # the connection window came back
