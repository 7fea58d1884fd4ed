"""SPEC §5 backend faults end to end: refused, died with the body, reset mid-response,
everything down, connection limits with the queue, and a flapping probe."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.e2e.configs import farm, hosts, service, sticky_ip, vip_policy
from tests.e2e.conftest import VIP
from tests.e2e.test_timeouts import l7_config, read_response, read_until_close
from tests.support.faulty import Steady, close_wait
from tests.support.net import connect_from, free_port, http_get, wait_for

TIMEOUTS = "timeout server 5\ntimeout connect 1\ntimeout client 5\n"
PROBE_DOWN = ("probe http ALWAYS-DOWN\n  interval 1\n  faildetect 1\n  passdetect interval 1\n"
              "  passdetect count 1\n  request method get url /probe\n  expect status 299 299\n")
PROBE_FLAP = ("probe http FLAP\n  interval 1\n  faildetect 1\n  passdetect interval 1\n"
              "  passdetect count 1\n  open 1\n  request method get url /probe\n")


def two_servers(ports, faulty):
    return (faulty.start("lnx1", "127.0.1.11", ports["a"]), faulty.start("lnx2", "127.0.1.12", ports["b"]))


def l7(ports, members, head: str = TIMEOUTS, farm_extra: str = "", host_extra: dict | None = None) -> str:
    """test_timeouts' one-farm L7 VIP with this module's timeouts (and probes) in `head`."""
    return l7_config(ports, members, timeouts=head, farm_extra=farm_extra, host_extra=host_extra)


def post(source: str, path: str, body: bytes, port: int, conn: socket.socket | None = None) -> bytes:
    s = conn or connect_from(source, VIP, port)
    try:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n".encode() + body)
        return read_until_close(s, 8)[0]
    finally:
        s.close()


def test_request_with_body_is_never_replayed_after_the_server_read_it(ports, faulty, balancer):
    lnx1, lnx2 = two_servers(ports, faulty)
    balancer(l7(ports, [("lnx1", ports["a"]), ("lnx2", ports["b"])]))
    # warm the keep-alive pool so the POSTs also ride reused server connections
    for _ in range(4):
        assert http_get("127.0.0.10", VIP, ports["vip"])[0] == 200
    for n in range(4):
        body = f"order-{n}".encode() * 10
        got = post("127.0.0.11", "/die", body, ports["vip"])
        assert got.startswith(b"HTTP/1.1 502 "), got
        seen = [r for b in (lnx1, lnx2) for r in b.requests if r.body == body]
        assert len(seen) == 1  # read by one server, which died: never sent anywhere again


def test_refused_connect_is_retried_even_with_a_body(ports, faulty, balancer):
    lnx2 = faulty.start("lnx2", "127.0.1.12", ports["b"])
    dead = free_port("127.0.1.11")
    balancer(l7(ports, [("lnx1", dead), ("lnx2", ports["b"])]))
    for n in range(4):  # nothing was sent to the refusing server, so the body may go elsewhere
        body = f"form-{n}".encode()
        got = post("127.0.0.12", "/submit", body, ports["vip"])
        assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"lnx2")
        assert [r.body for r in lnx2.requests].count(body) == 1


@pytest.mark.parametrize("how", ["truncate", "truncate-fin"])
def test_server_dying_mid_response_gives_a_truncated_response_never_a_fabricated_one(
        how, ports, faulty, balancer):
    faulty.start("lnx1", "127.0.1.11", ports["a"])
    balancer(l7(ports, [("lnx1", ports["a"])]))
    for keep_alive in (False, True):
        s = connect_from("127.0.0.13", VIP, ports["vip"])
        try:
            if keep_alive:  # a response already relayed on this connection changes nothing
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(s).endswith(b"lnx1")
            s.sendall(f"GET /{how}/1000/100 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data, end, _ = read_until_close(s, 5)
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 1000" in head.lower()
        assert body == b"y" * 100  # exactly what the server sent, nothing appended
        assert end in ("eof", "reset")
    assert wait_for(lambda: close_wait(ports["a"]) == 0, 3)  # no half-closed server connection kept


def test_all_servers_down_gives_503_at_once_without_a_connect(ports, faulty, balancer):
    lnx1, lnx2 = two_servers(ports, faulty)
    lb = balancer(l7(ports, [("lnx1", ports["a"]), ("lnx2", ports["b"])], head=TIMEOUTS + PROBE_DOWN,
                     farm_extra="  probe ALWAYS-DOWN\n"))
    assert wait_for(lambda: [p["state"] for p in lb.api("/show/probe")["data"]] == ["DOWN", "DOWN"], 10)
    for _ in range(10):
        start = time.monotonic()
        status, _, _ = http_get("127.0.0.14", VIP, ports["vip"])
        assert status == 503 and time.monotonic() - start < 0.5
    client_requests = [r for b in (lnx1, lnx2) for r in b.requests if not r.line.startswith(b"GET /probe")]
    assert client_requests == []  # only probes reached the servers ...
    for b in (lnx1, lnx2):  # ... and every connection was a probe's (one may be in flight)
        assert len(b.connections) <= len(b.requests) + 1


def test_backup_farm_serves_when_the_primary_farm_is_down(ports, faulty, balancer):
    lnx1, lnx2 = two_servers(ports, faulty)
    text = TIMEOUTS + PROBE_DOWN + hosts("lnx1", "lnx2")
    text += farm("web", [("lnx1", ports["a"], None)], extra="  probe ALWAYS-DOWN\n")
    text += farm("spare", [("lnx2", ports["b"], None)])
    text += sticky_ip("stick-web", "web backup spare", None)
    text += service(vip_policy("v", ports["vip"], "stick-web", http=True),
                    vip_policy("plain", ports["vip2"], "web backup spare", http=True, sticky=False))
    lb = balancer(text)
    assert wait_for(lambda: [p["state"] for p in lb.api("/show/probe")["data"]] == ["DOWN"], 10)
    for port in (ports["vip"], ports["vip2"]):  # sticky group backup, policy class backup
        for n in range(3):
            status, _, body = http_get(f"127.0.0.{20 + n}", VIP, port)
            assert (status, body) == (200, b"lnx2")
    assert not any(r.line.startswith(b"GET / ") for r in lnx1.requests)


def _conn_limit(ports, queue_s: str) -> str:
    head = TIMEOUTS + f"timeout queue {queue_s}\n"
    return l7(ports, [("lnx1", ports["a"])], head=head, host_extra={"lnx1": "conn-limit max 2"})


def _hold(ports, source: str, seconds: float, out: list) -> threading.Thread:
    def go():
        out.append(http_get(source, VIP, ports["vip"], f"/hold/{seconds}", timeout=10)[0])

    t = threading.Thread(target=go)
    t.start()
    return t


def _third_while_two_hold(ports, lnx1, hold_s: float, first: int) -> tuple[list, int, bytes, float]:
    """Clients 127.0.0.`first` and `first`+1 hold lnx1's two slots (conn-limit max 2) for
    `hold_s`; meanwhile client `first`+2 asks: (the holders' statuses, the third's status,
    its body, the seconds it waited)."""
    held: list = []
    threads = [_hold(ports, f"127.0.0.{first + n}", hold_s, held) for n in range(2)]
    try:
        assert wait_for(lambda: len(lnx1.requests) == 2, 5)
        start = time.monotonic()
        status, _, body = http_get(f"127.0.0.{first + 2}", VIP, ports["vip"], timeout=10)
        waited = time.monotonic() - start
    finally:
        for t in threads:
            t.join(15)
    return held, status, body, waited


def test_conn_limit_queues_the_third_request_until_a_slot_frees(ports, faulty, balancer):
    lnx1 = faulty.start("lnx1", "127.0.1.11", ports["a"])
    balancer(_conn_limit(ports, "3"))
    held, status, body, waited = _third_while_two_hold(ports, lnx1, 1.5, 30)
    assert held == [200, 200]
    assert (status, body) == (200, b"lnx1")
    assert 0.8 <= waited <= 2.5, waited  # it waited for a slot (~1.3 s), then was served
    third = lnx1.first(b"GET / ")
    assert third is not None and third.at >= min(r.at for r in lnx1.requests) + 1.0


def test_conn_limit_queue_deadline_gives_503(ports, faulty, balancer):
    lnx1 = faulty.start("lnx1", "127.0.1.11", ports["a"])
    balancer(_conn_limit(ports, "1"))
    held, status, _, waited = _third_while_two_hold(ports, lnx1, 3, 33)
    assert status == 503 and 0.8 <= waited <= 2.0, (status, waited)
    assert held == [200, 200]
    assert lnx1.first(b"GET / ") is None  # the queued request never reached the server


def test_flapping_backend_gets_no_traffic_while_its_probe_says_down(ports, faulty, balancer):
    flap, steady_b = two_servers(ports, faulty)
    lb = balancer(l7(ports, [("lnx1", ports["a"]), ("lnx2", ports["b"])], head=TIMEOUTS + PROBE_FLAP,
                     farm_extra="  probe FLAP\n"))
    assert wait_for(lambda: all(p["state"] == "UP" for p in lb.api("/show/probe")["data"]), 10)
    downs: list[tuple[float, float]] = []  # (went down, came back) in time.monotonic()
    states: list[str] = []
    stop = threading.Event()

    def flapper():
        for _ in range(3):
            if stop.wait(1.5):
                return
            flap.mode = "down"
            went = time.monotonic()
            if stop.wait(2.5):
                downs.append((went, time.monotonic()))
                return
            flap.mode = "ok"
            downs.append((went, time.monotonic()))

    def watcher():
        deadline = time.monotonic() + 20
        while not stop.wait(0.2) and time.monotonic() < deadline:
            states.append(next(p["state"] for p in lb.api("/show/probe")["data"] if p["rserver"] == "lnx1"))

    threads = [threading.Thread(target=flapper), threading.Thread(target=watcher)]
    with Steady("127.0.0.40", VIP, ports["vip"], max_s=15) as steady:
        for t in threads:
            t.start()
        threads[0].join(20)
    stop.set()
    threads[1].join(5)
    assert len(downs) == 3 and "DOWN" in states and states[-1] in ("UP", "DOWN")
    transitions = sum(1 for a, b in zip(states, states[1:]) if a != b)
    assert transitions >= 4  # the probe saw every flap
    # client requests that reached lnx1 while it answered 503: only inside the detection
    # window (one probe interval plus the probe's own time) after it went down
    hit_down = [r for r in flap.requests if r.mode == "down" and not r.line.startswith(b"GET /probe")]
    window = 1.6
    late = [round(r.at - went, 2) for r in hit_down for went, back in downs
            if went <= r.at <= back + 0.1 and r.at - went > window]
    assert late == []
    assert steady.ok > 50 and steady.failures == [503] * len(hit_down)  # no other failure
