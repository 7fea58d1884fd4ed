"""The admin API's front door (admin/gate.py) on a real loopback socket, with a stand-in
dispatch: deadlines (408), size before reading (413), the connection cap, Host / Origin /
Content-Type (issue 13 items 3-4). Deadlines are a few hundred milliseconds so each case
is quick; the wall clock is the point here (the kernel's sockets are what times out)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from buddylb.admin.gate import Gate, Limits, Screen, json_response

FAST = Limits(header_timeout_s=0.3, body_timeout_s=0.3, idle_timeout_s=0.4, max_connections=4, max_body=1024)


class Served:
    """A Gate listening on 127.0.0.1:ephemeral; dispatch echoes the request, or blocks."""

    def __init__(self, limits: Limits = FAST) -> None:
        self.limits = limits
        self.hold = asyncio.Event()
        self.hold.set()
        self.seen: list[tuple[bytes, bytes]] = []

    async def dispatch(self, head, body: bytes) -> bytes:
        self.seen.append((head.target, body))
        await self.hold.wait()
        return json_response(200, {"ok": True, "target": head.target.decode(), "length": len(body)})

    async def __aenter__(self) -> "Served":
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: self.gate.factory(), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.gate = Gate(self.limits, Screen("127.0.0.1", self.port), self.dispatch)
        return self

    async def __aexit__(self, *exc) -> None:
        self.gate.close_all()
        self.server.close()
        await self.server.wait_closed()

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    def req(self, target: str = "/info", method: str = "GET", headers: dict | None = None,
            body: bytes = b"") -> bytes:
        h = {"Host": f"127.0.0.1:{self.port}"} | (headers or {})
        if body or method == "POST":
            h.setdefault("Content-Length", str(len(body)))
        lines = "".join(f"{k}: {v}\r\n" for k, v in h.items())
        return f"{method} {target} HTTP/1.1\r\n{lines}\r\n".encode() + body


async def read_reply(reader: asyncio.StreamReader, timeout: float = 2.0) -> tuple[int, dict, float]:
    """(status, JSON body, seconds it took) of one response."""
    t0 = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode().split("\r\n")
    fields = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    assert fields["content-type"] == "application/json"
    body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), timeout)
    return int(lines[0].split()[1]), json.loads(body), time.monotonic() - t0


async def closed(reader: asyncio.StreamReader, timeout: float = 2.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionResetError:
        return True


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_request_passes_and_keep_alive_serves_the_next() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(s.req("/a") + s.req("/b"))  # pipelined: answered in order
            assert (await read_reply(r))[1]["target"] == "/a"
            assert (await read_reply(r))[1]["target"] == "/b"
            w.close()
    run(go())


def test_huge_content_length_is_413_before_any_body_byte() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(s.req("/reload", "POST", {"Content-Type": "application/json",
                                               "Content-Length": "999999999999999999"}))
            status, body, took = await read_reply(r)
            assert status == 413 and "999999999999999999" in body["error"] and took < 0.2
            assert await closed(r) and s.seen == []
    run(go())


def test_a_chunked_body_over_the_limit_is_413() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            w.write(b"800\r\n" + b"x" * 0x800 + b"\r\n")
            assert (await read_reply(r))[0] == 413 and s.seen == []
    run(go())


def test_half_sent_head_gets_408_at_the_header_deadline() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            t0 = time.monotonic()
            for _ in range(4):  # a slowloris trickle does not move the deadline
                await asyncio.sleep(0.05)
                w.write(b"X-A: b\r\n")
            status, body, _ = await read_reply(r)
            assert status == 408 and 0.25 <= time.monotonic() - t0 < 1.0
            assert await closed(r)
    run(go())


def test_short_body_gets_408_at_the_body_deadline() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(s.req("/reload", "POST", {"Content-Type": "application/json", "Content-Length": "10"}) + b"{}")
            status, _, took = await read_reply(r)
            assert status == 408 and took >= 0.25 and s.seen == []
    run(go())


def test_idle_connection_closes_silently() -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            t0 = time.monotonic()
            assert await r.read() == b""
            assert 0.35 <= time.monotonic() - t0 < 1.5
    run(go())


def test_idle_flood_cannot_lock_the_operator_out() -> None:
    async def go():
        async with Served() as s:
            flood = [await s.open() for _ in range(12)]
            await asyncio.sleep(0.05)
            assert len(s.gate.open) <= FAST.max_connections
            r, w = await s.open()
            w.write(s.req("/info"))
            assert (await read_reply(r))[0] == 200  # the oldest idle ones made room
            for _, fw in flood:
                fw.close()
    run(go())


def test_cap_refuses_with_503_when_every_slot_is_busy() -> None:
    async def go():
        async with Served() as s:
            s.hold.clear()
            busy = []
            for _ in range(FAST.max_connections):
                r, w = await s.open()
                w.write(s.req("/slow"))
                busy.append((r, w))
            while len(s.seen) < FAST.max_connections:
                await asyncio.sleep(0.01)
            r, w = await s.open()
            assert (await read_reply(r))[0] == 503
            s.hold.set()
            for br, _ in busy:
                assert (await read_reply(br))[0] == 200
            assert s.gate.refused == {503: 1}
    run(go())


@pytest.mark.parametrize("headers, method, status", [
    ({"Host": "evil.example"}, "GET", 421),
    ({"Host": "evil.example:{port}"}, "GET", 421),
    ({"Host": "127.0.0.1:1"}, "GET", 421),
    ({"Host": "127.0.0.2:{port}"}, "GET", 421),
    ({"Origin": "http://evil.example"}, "GET", 403),
    ({"Origin": "null"}, "GET", 403),
    ({"Origin": "http://evil.example", "Content-Type": "application/json"}, "POST", 403),
    ({"Content-Type": "text/plain"}, "POST", 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "POST", 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, "POST", 415),
    ({}, "POST", 415),
    ({}, "PUT", 405),
    ({}, "DELETE", 405),
])
def test_browser_rules_refuse(headers: dict, method: str, status: int) -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            h = {k: v.replace("{port}", str(s.port)) for k, v in headers.items()}
            w.write(s.req("/reload", method, h))
            got, body, _ = await read_reply(r)
            assert got == status and body["error"] and s.seen == []
    run(go())


@pytest.mark.parametrize("host, origin", [
    ("127.0.0.1:{port}", None), ("localhost:{port}", None), ("LOCALHOST", None), ("127.0.0.1", None),
    ("127.0.0.1:{port}", "http://127.0.0.1:{port}"), ("localhost:{port}", "http://localhost:{port}"),
])
def test_own_names_and_origin_pass(host: str, origin: str | None) -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            h = {"Host": host.replace("{port}", str(s.port)), "Content-Type": "application/json; charset=utf-8"}
            if origin:
                h["Origin"] = origin.replace("{port}", str(s.port))
            w.write(s.req("/reload", "POST", h, b"{}"))
            assert (await read_reply(r))[0] == 200
    run(go())


def test_wildcard_bind_accepts_ip_literals_only() -> None:
    screen = Screen("0.0.0.0", 9180)
    assert screen.host_ok("10.1.2.3:9180") and screen.host_ok("[::1]:9180") and screen.host_ok("localhost")
    assert not screen.host_ok("evil.example:9180") and not screen.host_ok("10.1.2.3:80")


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 9000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", b"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
])
def test_malformed_http_is_a_json_4xx(raw: bytes) -> None:
    async def go():
        async with Served() as s:
            r, w = await s.open()
            w.write(raw)
            status, body, _ = await read_reply(r)
            assert 400 <= status < 500 or status == 505, status
            assert body["error"] and s.seen == []
    run(go())
