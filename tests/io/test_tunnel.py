"""Upgrade and the tunnel (issue 16 item 1) on the fake transport and the fake clock.

The machine's side of a WebSocket: the upgrade request is decided and forwarded with
`Connection: upgrade` on a connection of its own, a 101 turns the connection into a byte
relay (tunnel.py) with flow control, half-close and `timeout tunnel` (60 s in
conftest's config), anything else keeps HTTP/1.1."""
from __future__ import annotations

from buddylb.io.l7.timers import IDLE, TUNNEL
from buddylb.io.l7.tunnel import Tunnel

from tests.io.conftest import FakeConn

WS = (b"GET /chat HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
GET = b"GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"


def open_requests(balancer) -> int:
    member = balancer.snapshot.contexts["Admin"].farms["web"].members[0]
    return balancer.state.connections(member)


def upgraded(machine, first_client: bytes = b"", first_server: bytes = b""):
    """Drive an upgrade to the 101; returns (tunnel, port, server conn)."""
    ex, port = machine
    port.idle.append(FakeConn())  # a pooled connection exists, and must not be used
    ex.client_data(WS + first_client)
    assert len(port.connects) == 1 and len(port.idle) == 1
    assert not port.reading  # the client's further bytes wait for the answer
    conn = FakeConn(reused=False)
    ex.connected(conn)
    ex.server_data(SWITCH + first_server)
    assert isinstance(port.ex, Tunnel) and conn.owner is port.ex and ex.phase == TUNNEL
    return port.ex, port, conn


def test_upgrade_request_is_forwarded_with_upgrade_on_a_new_connection(machine, balancer):
    t, port, conn = upgraded(machine)
    head = conn.written[0]
    assert head.startswith(b"GET /chat HTTP/1.1\r\n")
    assert b"connection: upgrade\r\n" in head and b"upgrade: websocket\r\n" in head
    assert b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" in head  # end to end: as received
    assert b"keep-alive" not in head.lower()  # the client's Connection is still hop-by-hop
    out = port.written[0]
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"connection: upgrade\r\n" in out and b"upgrade: websocket\r\n" in out
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out
    assert port.reading and open_requests(balancer) == 1  # the tunnel holds its rserver
    assert port.records == []  # written when the tunnel ends


def test_bytes_flow_both_ways_and_the_record_counts_them(machine, balancer):
    t, port, conn = upgraded(machine, first_client=b"early", first_server=b"hello")
    assert port.written[0].endswith(b"\r\n\r\nhello")  # the server's first frame, same write
    assert conn.written[1] == b"early"  # what the client sent before the 101 was held
    t.client_data(b"\x81\x02hi")
    t.server_data(b"\x81\x02yo")
    assert conn.written[-1] == b"\x81\x02hi" and port.written[-1] == b"\x81\x02yo"
    t.lost()
    assert conn.state == "closed" and open_requests(balancer) == 0
    rec = port.records[-1]
    assert rec.status == 101 and rec.rserver == "web1" and rec.method == b"GET"
    assert rec.bytes_in == len(WS) + len(b"early") + 4
    assert rec.bytes_out == len(port.written[0]) + 4
    t.lost()
    assert len(port.records) == 1  # once


def test_flow_control_pauses_the_other_side(machine):
    t, port, conn = upgraded(machine)
    t.client_write_paused()
    assert conn.paused
    t.client_write_resumed()
    assert not conn.paused
    t.server_write_paused()
    assert not port.reading
    t.server_write_resumed()
    assert port.reading


def test_half_close_is_passed_on_both_ways(machine):
    t, port, conn = upgraded(machine)
    assert t.client_eof() is True and conn.eof_sent  # half-open: the server may still talk
    t.server_data(b"last words")
    assert port.written[-1] == b"last words" and port.state == "open"
    t.server_eof()
    assert port.state == "closed"


def test_server_eof_first_half_closes_the_client(machine):
    t, port, conn = upgraded(machine)
    t.server_eof()
    assert port.eof_sent and port.state == "open"
    t.client_data(b"still sending")
    assert conn.written[-1] == b"still sending"


def test_server_that_dies_mid_tunnel_closes_the_client(machine, balancer):
    t, port, conn = upgraded(machine)
    t.server_lost(ConnectionResetError())
    assert port.state == "closed"
    t.client_data(b"into the void")  # before connection_lost: dropped, no crash
    t.lost()
    assert open_requests(balancer) == 0 and port.records[-1].error == "server connection lost"


def test_tunnel_timeout_is_silence_both_ways_at_the_deadline_not_before(machine, balancer):
    t, port, conn = upgraded(machine)
    port.advance(59.9)
    assert port.state == "open"
    t.client_data(b"ping")  # the client speaks: 60 s from now
    port.advance(40)
    t.server_data(b"pong")  # the server speaks: 60 s from now
    port.advance(59.9)
    assert port.state == "open" and conn.state == "open"
    port.advance(0.2)
    assert port.state == "aborted" and conn.state == "aborted"
    assert open_requests(balancer) == 0
    assert port.records[-1].status == 101 and port.records[-1].error == "tunnel timeout"


def test_the_exchange_timeouts_do_not_apply_in_the_tunnel(machine):
    """`timeout client` 4 s, `server` 5 s: a quiet WebSocket outlives them."""
    t, port, conn = upgraded(machine)
    port.advance(30)
    assert port.state == "open"


def test_purge_aborts_both_sides(machine, balancer):
    t, port, conn = upgraded(machine)
    t.abort()
    assert port.state == "aborted" and conn.state == "aborted" and open_requests(balancer) == 0


def test_non_101_answer_keeps_http_and_the_next_request_works(machine, balancer):
    ex, port = machine
    ex.client_data(WS + GET)  # a pipelined request behind the upgrade request
    conn = FakeConn(reused=False)
    ex.connected(conn)
    assert len(conn.written) == 1  # the GET is held, not forwarded on the upgrade's connection
    ex.server_data(b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n")
    assert port.written[0].startswith(b"HTTP/1.1 426 ")
    assert b"upgrade" not in port.written[0].lower().split(b"\r\n", 1)[1]  # hop-by-hop: removed
    assert conn.state == "closed"  # the upgrade's connection is never reused
    assert port.reading and len(port.connects) == 2  # the held GET is a request again
    conn2 = FakeConn(reused=False)
    ex.connected(conn2)
    assert conn2.written[0].startswith(b"GET /a HTTP/1.1\r\n")
    ex.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert port.written[-1].endswith(b"ok") and ex.phase == IDLE
    assert [r.status for r in port.records] == [426, 200] and open_requests(balancer) == 0


def test_101_without_an_upgrade_request_is_a_502(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(GET)
    ex.server_data(SWITCH)
    assert port.written[0].startswith(b"HTTP/1.1 502 ") and conn.state == "aborted"


def test_101_to_another_protocol_than_offered_is_a_502(machine):
    ex, port = machine
    ex.client_data(WS)
    conn = FakeConn(reused=False)
    ex.connected(conn)
    ex.server_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
    assert port.written[0].startswith(b"HTTP/1.1 502 ") and not isinstance(port.ex, Tunnel)


def test_h2c_is_never_forwarded_and_the_request_stays_http(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)  # no upgrade: the pooled connection serves
    ex.client_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
    head = conn.written[0].lower()
    assert b"upgrade" not in head and b"http2-settings" not in head
    assert port.reading


def test_upgrade_with_a_body_is_forwarded_as_a_plain_request(machine):
    ex, port = machine
    conn = FakeConn()
    port.idle.append(conn)
    ex.client_data(b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Content-Length: 2\r\n\r\nhi")
    head = conn.written[0].lower()
    assert b"upgrade" not in head and head.endswith(b"\r\n\r\nhi")
