"""Demo-style backends for tests: small servers on 127.0.1.x that answer with their name.

They run on an asyncio loop in a background thread of the test process (the balancer
under test is a separate process). `http` servers speak keep-alive HTTP/1.1 and answer
`<name>` with an `X-Server` header; `tcp` servers send `<name>\n` then echo. Every server
records what it received, so tests can assert that nothing malformed reached a backend.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


def split_request(buf: bytes) -> tuple[bytes, dict[bytes, bytes], bytes] | None:
    """The first request head in `buf`: (request line, fields by lower-case name, the bytes
    after the head), or None while the head is incomplete.  The one way the test servers
    (here and tests/support/faulty.py) read what the balancer sent them."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    fields = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        fields[k.strip().lower()] = v.strip()
    return lines[0], fields, rest


def target(request_line: bytes) -> bytes:
    """The request target of a request line ("/" when it has none)."""
    parts = request_line.split(b" ")
    return parts[1] if len(parts) > 1 else b"/"


@dataclass
class Backend:
    name: str
    host: str
    port: int
    kind: str
    requests: list = field(default_factory=list)
    connections: int = 0
    open: int = 0
    server: asyncio.AbstractServer | None = None


class _Http(asyncio.Protocol):
    def __init__(self, b: Backend) -> None:
        self.b = b
        self.buf = b""

    def connection_made(self, t):
        self.t = t
        self.b.connections += 1
        self.b.open += 1

    def connection_lost(self, exc):
        self.b.open -= 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (got := split_request(self.buf)) is not None:
            line, hdrs, rest = got
            n = int(hdrs.get(b"content-length", b"0") or 0)
            if b"chunked" in hdrs.get(b"transfer-encoding", b""):
                end = rest.find(b"0\r\n\r\n")
                if end < 0:
                    return
                body, rest = rest[:end + 5], rest[end + 5:]
            else:
                if len(rest) < n:
                    return
                body, rest = rest[:n], rest[n:]
            self.buf = rest
            self.b.requests.append((line, hdrs, body))
            path = target(line)
            payload = self.b.name.encode()
            extra = b""
            if path.startswith(b"/setcookie/"):
                extra = b"Set-Cookie: " + path[len(b"/setcookie/"):] + b"; Path=/\r\n"
            if path.startswith(b"/big/"):
                payload = b"x" * int(path[len(b"/big/"):])
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(payload)).encode()
                         + b"\r\nX-Server: " + self.b.name.encode() + b"\r\n" + extra
                         + b"Content-Type: text/plain\r\n\r\n" + payload)
            if hdrs.get(b"connection", b"").lower() == b"close":
                self.t.close()
                return


class _Tcp(asyncio.Protocol):
    def __init__(self, b: Backend) -> None:
        self.b = b

    def connection_made(self, t):
        self.t = t
        self.b.connections += 1
        self.b.open += 1
        t.write(self.b.name.encode() + b"\n")

    def connection_lost(self, exc):
        self.b.open -= 1

    def data_received(self, data):
        self.b.requests.append(data)
        self.t.write(data)

    def eof_received(self):
        return False


class Backends:
    """Start with `with Backends() as bk: bk.http("lnx1", "127.0.1.11", port)`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: dict[tuple[str, int], Backend] = {}

    def __enter__(self) -> "Backends":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, b: Backend, ssl_ctx=None) -> Backend:
        proto = _Http if b.kind in ("http", "https") else _Tcp
        if ssl_ctx is not None:
            b.ssl = ssl_ctx

        async def go():
            b.server = await self.loop.create_server(lambda: proto(b), b.host, b.port, reuse_address=True,
                                                     ssl=getattr(b, "ssl", None))

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)
        self.servers[(b.host, b.port)] = b
        return b

    def http(self, name: str, host: str, port: int) -> Backend:
        return self._start(Backend(name, host, port, "http"))

    def https(self, name: str, host: str, port: int, cert: str, key: str, max_tls12: bool = True) -> Backend:
        """An HTTPS backend with its own session cache (TLS 1.2 session ids when max_tls12)."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if max_tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.options |= ssl.OP_NO_TICKET  # session-id resumption (tickets carry no stable id)
        return self._start(Backend(name, host, port, "https"), ctx)

    def tcp(self, name: str, host: str, port: int) -> Backend:
        return self._start(Backend(name, host, port, "tcp"))

    def stop(self, b: Backend) -> None:
        async def go():
            if b.server is not None:
                b.server.close()
                await b.server.wait_closed()

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def restart(self, b: Backend) -> None:
        self._start(b)

    def close(self) -> None:
        for b in list(self.servers.values()):
            if b.server is not None:
                self.loop.call_soon_threadsafe(b.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
