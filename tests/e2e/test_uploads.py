"""Long uploads and `fail-action purge` on L7 VIPs, end to end (issue 13 item 1, issue 10).

`timeout server` is the server's silence: an upload that takes longer than it, to a
server that reads the whole body before answering, gets the server's 200, never a 504.
"""
from __future__ import annotations

import socket
import time

from tests.e2e.conftest import VIP
from tests.e2e.test_timeouts import TIMEOUTS, l7_config, read_response
from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.support.net import connect_from, wait_for

BODY = 6 * 1024 * 1024
PIECE = 64 * 1024


def test_upload_slower_than_timeout_server_gets_the_servers_answer(ports, faulty, balancer):
    web = faulty.start("lnx1", "127.0.1.11", ports["a"])
    balancer(l7_config(ports, [("lnx1", ports["a"])]))  # timeout server 1, timeout client 1
    s = connect_from("127.0.0.31", VIP, ports["vip"])
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BODY)
        start = time.monotonic()
        sent = 0
        while sent < BODY:  # about 3 s in all: three times `timeout server`
            s.sendall(b"u" * PIECE)
            sent += PIECE
            time.sleep(max(0.0, start + 3.0 * sent / BODY - time.monotonic()))
        took = time.monotonic() - start
        answer = read_response(s, 5.0)
    finally:
        s.close()
    assert took >= 2.5, took
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert len(web.requests[-1].body) == BODY


def test_fail_action_purge_closes_l7_requests_of_a_failed_rserver(ports, faulty, balancer):
    """SPEC §2.1: `fail-action purge` on an L7 VIP closes the requests in flight to an
    rserver as soon as its probe fails (without it they would run to the end)."""
    web = faulty.start("lnx1", "127.0.1.11", ports["a"])
    text = TIMEOUTS.replace("timeout server 1", "timeout server 30") + hosts("lnx1")
    text += "probe http CHECK\n  interval 1\n  faildetect 1\n  request method get url /health\n"
    text += farm("web", [("lnx1", ports["a"], None)], extra="  probe CHECK\n  fail-action purge\n")
    text += service(vip_policy("v", ports["vip"], "web", http=True, sticky=False))
    balancer(text)
    assert wait_for(lambda: any(r.line.startswith(b"GET /health") for r in web.requests), 5)
    s = connect_from("127.0.0.32", VIP, ports["vip"])
    try:
        s.sendall(b"GET /hold/20 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: any(r.line.startswith(b"GET /hold") for r in web.requests), 5)
        web.mode = "down"  # the probe now gets 503s
        start = time.monotonic()
        s.settimeout(10)
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout) as exc:
            data = type(exc).__name__.encode()
        took = time.monotonic() - start
    finally:
        s.close()
    assert data in (b"", b"ConnectionResetError"), data[:80]
    assert took < 5, took  # the probe's failure, not the 20 s hold, ended it
