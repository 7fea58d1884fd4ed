"""A probe of a send-proxy farm opens with the PROXY header, before TLS for https
(io.probe_checks); against a loopback server that insists on the header first."""
from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from buddylb.config.model import Probe
from buddylb.io.probe_checks import check
from buddylb.proxyproto import BadProxyHeader, ProxyHeader, parse
from tests.support.certs import make_cert


class _Server:
    """Refuses (closes) a connection that does not open with a header, like nginx's
    `listen ... proxy_protocol`; then TLS if asked, then one HTTP answer.  The header is
    read from the socket byte by byte, so the TLS layer starts on exactly what follows."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.tls = tls
        self.seen: list[ProxyHeader] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.tasks: set = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.sock)
            conn.setblocking(False)
            task = loop.create_task(self._serve(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        buf = b""
        header = None
        while header is None:
            chunk = await loop.sock_recv(conn, 1)
            try:
                header = parse(buf + chunk) if chunk else None
            except BadProxyHeader:
                chunk = b""
            if not chunk:
                conn.close()
                return
            buf += chunk
        self.seen.append(header)
        reader = asyncio.StreamReader()
        proto = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.connect_accepted_socket(lambda: proto, conn, ssl=self.tls)
        writer = asyncio.StreamWriter(transport, proto, reader, loop)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("kind", ["http", "https"])
@pytest.mark.parametrize("version", [1, 2])
def test_probe_sends_the_header_first(tmp_path: Path, kind: str, version: int) -> None:
    tls = None
    if kind == "https":
        cert, key = make_cert(tmp_path)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(cert), str(key))

    async def main() -> None:
        server = _Server(tls)
        accept = asyncio.get_running_loop().create_task(server.run())
        seen, port = server.seen, server.port
        probe = Probe("P", 1, kind)  # type: ignore[arg-type]
        try:
            result = await check(probe, "127.0.0.1", port, send_proxy=version)
            assert result.ok, result
            (h,) = seen
            if version == 2:
                assert h.local and h.version == 2  # LOCAL: a connection on our own behalf
            else:
                assert not h.local and h.source is not None and h.source[0] == "127.0.0.1"
                assert h.destination == ("127.0.0.1", port)  # the probe connection's own endpoints
            refused = await check(probe, "127.0.0.1", port)  # no header: the server closes
            assert not refused.ok and len(seen) == 1
        finally:
            accept.cancel()
            for task in list(server.tasks):
                task.cancel()
            server.sock.close()

    asyncio.run(main())
