"""The L7 exchange machine on a fake transport and a fake clock: no sockets, no waiting.

Timeouts are checked at exact fake instants (the deadline and just before it), which a
wall-clock test can only bracket with a window."""
from __future__ import annotations

from buddylb.io.l7.timers import CLOSED, EXCHANGE, HEAD, IDLE, LINGER

from tests.io.conftest import FakeConn

GET = b"GET /a?b=1 HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def open_requests(balancer) -> int:
    member = balancer.snapshot.contexts["Admin"].farms["web"].members[0]
    return balancer.state.connections(member)


def test_keep_alive_request_is_forwarded_and_answered_in_one_write_each(machine, balancer):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(GET)
    assert len(conn.written) == 1  # the re-serialised head, one write
    head = conn.written[0]
    assert head.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: shop\r\n")
    assert b"x-forwarded-for: 127.0.0.9\r\n" in head and b"x-forwarded-proto: http\r\n" in head
    assert open_requests(balancer) == 1 and port.connects == []
    ex.server_data(OK)
    assert port.written == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"]
    assert port.given_back == [conn] and open_requests(balancer) == 0
    rec = port.records[-1]
    assert (rec.status, rec.rserver, rec.port, rec.outcome) == (200, "web1", 8080, "no_sticky")
    assert (rec.bytes_in, rec.bytes_out) == (len(GET), len(port.written[0]))  # heads count (issue 14)
    assert ex.phase == IDLE and port.state == "open"


def test_alternating_requests_on_one_connection_are_each_framed_and_recorded_as_their_own(machine):
    """The machine copies what it reads of a head once per head object (the parser hands
    the same object back for the same bytes) and resets one response parser per request:
    a HEAD between two GETs must still be answered without a body and logged as itself."""
    ex, port = machine
    head_req = b"HEAD /h HTTP/1.1\r\nHost: shop\r\n\r\n"
    for req, resp in ((GET, OK), (head_req, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), (GET, OK)):
        port.idle.append(FakeConn())
        ex.client_data(req)
        ex.server_data(resp)
    assert port.written == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",  # HEAD: the length, no body
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"]
    assert [(r.method, r.path, r.bytes_in, r.status) for r in port.records] == [
        (b"GET", b"/a?b=1", len(GET), 200), (b"HEAD", b"/h", len(head_req), 200), (b"GET", b"/a?b=1", len(GET), 200)]
    assert len(port.given_back) == 3 and ex.phase == IDLE


def test_body_that_came_with_the_head_goes_out_in_the_same_write(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    assert len(conn.written) == 1 and conn.written[0].endswith(b"content-length: 5\r\n\r\nhello")
    assert port.reading  # nothing held back: no pause/resume pair


def test_without_an_idle_connection_the_port_connects_and_pending_body_follows_the_head(machine):
    ex, port = machine
    ex.client_data(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello")
    assert len(port.connects) == 1
    ex.client_data(b"world")  # arrives while connecting: held, and reading paused
    assert not port.reading
    conn = FakeConn(reused=False)
    ex.connected(conn)
    assert len(conn.written) == 1 and conn.written[0].endswith(b"\r\n\r\nhelloworld")
    assert port.reading


def test_connect_failure_is_a_502_and_a_lingering_close(machine, balancer):
    ex, port = machine
    ex.client_data(GET)
    lease = port.connects[0]
    lease.release()  # what io.flow.connect does when both tries failed
    ex.connect_failed()
    assert port.written[0].startswith(b"HTTP/1.1 502 ") and port.eof_sent
    assert ex.phase == LINGER and port.records[-1].status == 502
    port.advance(0.99)
    assert port.state == "open"  # still discarding what the client sends
    port.advance(0.02)
    assert port.state == "closed"


def test_http_request_timeout_is_408_at_the_deadline_not_before(machine):
    ex, port = machine
    ex.client_data(b"GET / HTTP/1.1\r\nHo")
    port.advance(1.99)
    assert port.written == [] and ex.phase == HEAD
    port.advance(0.02)
    assert port.written[0].startswith(b"HTTP/1.1 408 ")


def test_slowloris_bytes_never_restart_the_head_timeout(machine):
    ex, port = machine
    for piece in (b"GET / HTTP/1.1\r\n", b"Host: a\r\n", b"X-A: 1\r\n"):
        ex.client_data(piece)
        port.advance(0.6)
    port.advance(0.3)
    assert port.written and port.written[0].startswith(b"HTTP/1.1 408 ")


def test_idle_keep_alive_connection_closes_silently(machine):
    ex, port = machine
    port.idle.append(FakeConn())
    ex.client_data(GET)
    ex.server_data(OK)
    written = len(port.written)
    port.advance(2.9)
    assert port.state == "open"
    port.advance(0.2)
    assert port.state == "closed" and len(port.written) == written


def test_silent_server_gets_504_after_timeout_server(machine, balancer):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(GET)
    port.advance(4.9)
    assert port.written == [] and ex.phase == EXCHANGE
    port.advance(0.2)
    assert port.written[0].startswith(b"HTTP/1.1 504 ") and conn.state == "aborted"
    assert open_requests(balancer) == 0


def test_server_is_not_late_while_the_request_body_still_flows_to_it(machine):
    """Issue 13 item 1: an upload longer than `timeout server` (5 s) at a steady pace."""
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n")
    for _ in range(40):  # one byte every 0.3 s: 12 s in all, under `timeout client` each time
        port.advance(0.3)
        ex.client_data(b"x")
    assert port.written == [] and ex.request_done
    port.advance(4.9)  # now the server has it all: its silence counts from the last byte
    assert port.written == []
    ex.server_data(OK)
    assert port.written[-1].startswith(b"HTTP/1.1 200 OK")


def test_client_that_stops_sending_its_body_gets_408(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\nxx")
    port.advance(3.9)
    assert port.written == []
    port.advance(0.2)  # `timeout client` 4 s
    assert port.written[0].startswith(b"HTTP/1.1 408 ") and conn.state == "aborted"


def test_slow_reader_is_aborted_after_the_response_started(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(GET)
    ex.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    ex.client_write_paused()
    assert conn.paused  # the server is not read while the client does not read
    port.advance(4.1)
    assert port.state == "aborted" and conn.state == "aborted"
    assert port.records[-1].status == 200


def test_pipelined_requests_are_answered_in_order(machine):
    ex, port = machine
    first, second = FakeConn(), FakeConn()
    port.idle.extend([second, first])
    ex.client_data(GET + b"GET /two HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert first.written and not second.written and not port.reading
    ex.server_data(OK)
    assert second.written and second.written[0].startswith(b"GET /two ")
    assert port.reading


def test_invalid_request_is_a_400_and_never_reaches_a_server(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert port.written[0].startswith(b"HTTP/1.1 400 ") and conn.written == []


def test_lost_client_releases_the_request_once(machine, balancer):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(GET)
    ex.lost()
    ex.lost()
    assert open_requests(balancer) == 0 and conn.state == "aborted"
    assert [r.status for r in port.records] == [499] and ex.phase == CLOSED
