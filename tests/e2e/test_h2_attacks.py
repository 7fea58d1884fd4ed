"""HTTP/2 attack patterns against a TLS VIP (issue 16 part 2): each closes the offending
connection, and a normal client served alongside the attack never notices."""
from __future__ import annotations

import threading
import time

import pytest
from hyperframe.frame import DataFrame, RstStreamFrame

from tests.e2e.configs import shopping_cart
from tests.e2e.conftest import VIP
from tests.support.h2client import H2Client

pytestmark = pytest.mark.e2e

ENHANCE_YOUR_CALM, PROTOCOL_ERROR = 11, 1


@pytest.fixture
def shop(ports, backends, balancer):
    web = {}
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        web[n] = backends.http(n, h, ports[f"{n}_dec"])
    lb = balancer(shopping_cart(ports), certs=True)
    return lb, ports["vip_https"], web


class Bystander:
    """A normal h2 client requesting every 50 ms on its own connection while an attack runs."""

    def __init__(self, port: int) -> None:
        self.client = H2Client("127.0.0.70", VIP, port)
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                status, _, body = self.client.get("/", None)
                if status == 200 and body:
                    self.ok += 1
                else:
                    self.failures.append(f"status {status}")
            except Exception as exc:  # noqa: BLE001 - a failure is what the test reports
                self.failures.append(repr(exc))
                return
            time.sleep(0.05)

    def __enter__(self) -> "Bystander":
        assert self.client.get("/")[0] == 200
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)  # served after the attack, too
        self.stop.set()
        self.thread.join(10)
        self.client.close()
        assert not self.failures and self.ok >= 2, (self.ok, self.failures)


def _closed_with(attacker: H2Client, codes: tuple[int, ...]) -> None:
    assert attacker.wait_closed(15), "the attacking connection stays open"
    assert attacker.goaway is not None and attacker.goaway.error_code in codes, attacker.goaway


def _send_quietly(attacker: H2Client, data: bytes) -> None:
    try:
        attacker.send_raw(data)
    except OSError:
        pass  # closed under us: what the test expects


def test_rapid_reset(shop):
    lb, port, _ = shop
    with Bystander(port):
        a = H2Client("127.0.0.71", VIP, port)
        try:
            for batch in range(20):
                out = b""
                for i in range(50):
                    sid = 1 + 2 * (batch * 50 + i)
                    out += a.headers_frame(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
                                                 (b":authority", b"x")], end_stream=True)
                    out += RstStreamFrame(sid, error_code=8).serialize()  # CANCEL
                _send_quietly(a, out)
            _closed_with(a, (ENHANCE_YOUR_CALM,))
        finally:
            a.close()


def test_continuation_flood(shop):
    lb, port, web = shop
    before = sum(len(b.requests) for b in web.values())
    with Bystander(port):
        a = H2Client("127.0.0.72", VIP, port)
        try:
            fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"x")]
            _send_quietly(a, a.headers_frame(1, fields, end_headers=False))
            junk = a.conn.encoder.encode([(b"x-flood", b"y" * 4000)])
            for _ in range(100):
                _send_quietly(a, a.continuation(1, junk))
            _closed_with(a, (ENHANCE_YOUR_CALM, PROTOCOL_ERROR))
        finally:
            a.close()
    # the flooding request never reached a server (only the bystander's did)
    assert all(b"x-flood" not in r[1] for b in web.values() for r in b.requests[before:])


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_control_frame_flood(shop, kind):
    lb, port, _ = shop
    with Bystander(port):
        a = H2Client("127.0.0.73", VIP, port)
        try:
            frame = a.ping(7) if kind == "ping" else a.settings()
            for _ in range(30):
                _send_quietly(a, frame * 100)  # never reading the ACKs
            _closed_with(a, (ENHANCE_YOUR_CALM,))
        finally:
            a.close()


def test_too_many_streams(shop):
    lb, port, _ = shop
    with Bystander(port):
        a = H2Client("127.0.0.74", VIP, port)
        try:
            fields = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/slow"), (b":authority", b"x")]
            out = b"".join(a.headers_frame(1 + 2 * i, fields, end_stream=False) for i in range(150))
            _send_quietly(a, out)
            _closed_with(a, (PROTOCOL_ERROR, 7))  # 7: REFUSED_STREAM is never a GOAWAY code; PROTOCOL_ERROR is
        finally:
            a.close()


def test_malformed_streams_are_reset_and_never_forwarded(shop):
    lb, port, web = shop
    c = H2Client("127.0.0.75", VIP, port)
    try:
        before = sum(len(b.requests) for b in web.values())
        bad = [
            [(b"x-a", b"1\r\nx-injected: yes")],
            [(b"connection", b"keep-alive")],
            [(b"transfer-encoding", b"chunked")],
            [(b"te", b"gzip")],
            [(b"X-Upper", b"1")],
            [(b"host", b"other.example")],
        ]
        for extra in bad:
            status, fields, _ = c.response(c.request("/", headers=extra))
            assert status == -1 and fields["reset"] == PROTOCOL_ERROR
        # a pseudo-header after a regular field, and an unknown one
        for fields_ in ([(b":method", b"GET"), (b":scheme", b"https"), (b"x-a", b"1"), (b":path", b"/")],
                        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":evil", b"1")]):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, fields_, end_stream=True)
            c.flush()
            assert c.response(sid)[0] == -1
        assert sum(len(b.requests) for b in web.values()) == before  # nothing reached a server
        assert c.get("/")[0] == 200  # the connection still serves
        # an HTTP/1.1 rule breaks (a bad Host): the exchange answers 400 on that stream
        status, _, body = c.response(_bad_host(c))
        assert status == 400
        assert c.get("/")[0] == 200
    finally:
        c.close()


def _bad_host(c: H2Client) -> int:
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
                              (b":authority", b"bad host")], end_stream=True)
    c.flush()
    return sid


def test_content_length_disagreeing_with_data(shop):
    lb, port, web = shop
    c = H2Client("127.0.0.76", VIP, port)
    try:
        before = sum(len(b.requests) for b in web.values())
        sid = c.request("/", "POST", headers=[("content-length", "10")], end=False)
        f = DataFrame(sid, data=b"12345")
        f.flags.add("END_STREAM")
        _send_quietly(c, f.serialize())
        _closed_with(c, (PROTOCOL_ERROR,))
        assert sum(len(b.requests) for b in web.values()) == before  # never complete at a server
    finally:
        c.close()
