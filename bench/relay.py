"""The platform ceiling for `make bench`: a bare uvloop relay, L7 or L4, of the same traffic.

`python -m bench.relay --mode l7|l4 --http PORT [--https PORT --cert C --key K]
 --servers H:P,H:P --dec-servers H:P,H:P --ready FILE`

Owns a minimal balancer that does what any Python L7 balancer must do and nothing else,
so `buddylb / ceiling` says how much of buddylb's cost is its own design rather than
Python and uvloop (issue 10 item 8). L7: split the request head, drop hop-by-hop fields,
add X-Forwarded-For / -Proto, remember the server per source address (a dict), keep an
idle keep-alive pool per server, frame the response (Content-Length, chunked, or until
close) and relay it. L4: the source-address dict and a byte relay with flow control.
No validation beyond what framing needs, no timers, no log: it is a benchmark tool,
never part of the product (nothing in `src/` imports it). Request bodies are relayed by
Content-Length only (wrk sends none); anything else gets a 501 and a close.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import signal
import ssl
import sys
from pathlib import Path

import uvloop

HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"http2-settings",
                 b"x-forwarded-for", b"x-forwarded-proto", b"transfer-encoding", b"content-length"})
NOT_IMPLEMENTED = b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class Farm:
    """Round robin for new sources, then the source address -> server dict (stickiness)."""

    def __init__(self, servers: list[tuple[str, int]], sticky: dict[str, tuple[str, int]]) -> None:
        self.servers = servers
        self.sticky = sticky
        self.rr = itertools.cycle(servers)
        self.idle: dict[tuple[str, int], list[ServerSide]] = {s: [] for s in servers}

    def choose(self, source: str) -> tuple[str, int]:
        server = self.sticky.get(source)
        if server is None or server not in self.idle:
            server = self.sticky[source] = next(self.rr)
        return server


# -- L7 -----------------------------------------------------------------------------------
class ServerSide(asyncio.Protocol):
    """One keep-alive connection to a server; frames one response at a time for `client`."""

    def __init__(self, farm: Farm, server: tuple[str, int]) -> None:
        self.farm, self.server = farm, server
        self.transport: asyncio.Transport | None = None
        self.client: ClientSide | None = None
        self.buf = b""
        self.head_done = False
        self.remaining = 0  # Content-Length bytes still to relay
        self.chunked = False
        self.until_close = False
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # unsolicited: drop the connection
            self.reusable = False
            self.transport.close()  # type: ignore[union-attr]
            return
        if self.head_done:
            self._body(data, client)
            return
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.buf[:end], self.buf[end + 4:]
        self.buf = b""
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        out = [b"HTTP/1.1 " + b" ".join(status[1:])]
        length, close = None, status[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            low = name.lower()
            if low in HOP:
                if low == b"content-length":
                    length = int(value)
                elif low == b"transfer-encoding":
                    self.chunked = True
                elif low == b"connection":
                    close = b"close" in value.lower()
                continue
            out.append(line)
        code = int(status[1])
        self.reusable = not close
        if self.chunked:
            out.append(b"transfer-encoding: chunked")
        elif length is not None:
            out.append(b"content-length: %d" % length)
            self.remaining = 0 if client.method == b"HEAD" or code in (204, 304) else length
        elif code in (204, 304) or client.method == b"HEAD":
            self.remaining = 0
        else:
            self.until_close, self.reusable = True, False
        if client.close or self.until_close:
            out.append(b"connection: close")
        self.head_done = True
        client.transport.write(b"\r\n".join(out) + b"\r\n\r\n")
        self._body(rest, client)

    def _body(self, data: bytes, client: ClientSide) -> None:
        if data:
            client.transport.write(data)
        if self.until_close:
            return
        if self.chunked:
            self.buf += data
            if not self.buf.endswith(b"0\r\n\r\n"):  # the last chunk (no trailers from nginx)
                return
        else:
            self.remaining -= len(data)
            if self.remaining > 0:
                return
        self._done(client)

    def _done(self, client: ClientSide) -> None:
        self.client, self.buf, self.head_done, self.remaining, self.chunked = None, b"", False, 0, False
        if self.reusable:
            self.farm.idle[self.server].append(self)
        else:
            self.transport.close()  # type: ignore[union-attr]
        client.response_done()

    def connection_lost(self, exc: Exception | None) -> None:
        idle = self.farm.idle[self.server]
        if self in idle:
            idle.remove(self)
        client, self.client = self.client, None
        if client is not None:
            if self.until_close:
                client.response_done(force_close=True)
            else:
                client.abort(BAD_GATEWAY if not self.head_done else b"")


class ClientSide(asyncio.Protocol):
    """One client connection: one request at a time, pipelined bytes wait in `buf`."""

    def __init__(self, farm: Farm, proto: bytes) -> None:
        self.farm, self.proto = farm, proto
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""
        self.busy = False
        self.close = False
        self.method = b""
        self.source = ""
        self.xff = b""
        self.body_left = 0
        self.server: ServerSide | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.source = transport.get_extra_info("peername")[0]
        self.xff = self.source.encode()

    def data_received(self, data: bytes) -> None:
        if self.body_left and self.server is not None:  # request body bytes
            n = min(self.body_left, len(data))
            self.server.transport.write(data[:n])  # type: ignore[union-attr]
            self.body_left -= n
            data = data[n:]
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, self.buf = self.buf[:end], self.buf[end + 4:]
        lines = head.split(b"\r\n")
        request_line = lines[0]
        self.method = request_line.split(b" ", 1)[0]
        out = [request_line.rsplit(b" ", 1)[0] + b" HTTP/1.1"]
        length, close = 0, request_line.endswith(b"1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            low = name.lower()
            if low in HOP:
                if low == b"content-length":
                    length = int(value)
                elif low == b"transfer-encoding":
                    self.abort(NOT_IMPLEMENTED)
                    return
                elif low == b"connection":
                    close = b"close" in value.lower()
                continue
            out.append(line)
        out.append(b"x-forwarded-for: " + self.xff)
        out.append(b"x-forwarded-proto: " + self.proto)
        if length:
            out.append(b"content-length: %d" % length)
        self.close, self.busy = close, True
        body, self.buf = self.buf[:length], self.buf[length:]
        self.body_left = length - len(body)
        wire = b"\r\n".join(out) + b"\r\n\r\n" + body
        server = self.farm.choose(self.source)
        idle = self.farm.idle[server]
        if idle:
            conn = idle.pop()
            self._attach(conn, wire)
        else:
            asyncio.ensure_future(self._connect(server, wire))

    async def _connect(self, server: tuple[str, int], wire: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: ServerSide(self.farm, server), *server)
        except OSError:
            self.abort(BAD_GATEWAY)
            return
        self._attach(conn, wire)

    def _attach(self, conn: ServerSide, wire: bytes) -> None:
        if self.transport.is_closing():
            self.farm.idle[conn.server].append(conn)
            return
        conn.client, self.server = self, conn
        conn.transport.write(wire)  # type: ignore[union-attr]

    def response_done(self, force_close: bool = False) -> None:
        self.busy, self.server = False, None
        if self.close or force_close:
            self.transport.close()
        elif self.buf:
            self._next()

    def abort(self, reply: bytes) -> None:
        if reply:
            self.transport.write(reply)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        server, self.server = self.server, None
        if server is not None and server.client is self:
            server.client = None
            server.transport.close()  # type: ignore[union-attr]


# -- L4 -----------------------------------------------------------------------------------
class Pipe(asyncio.Protocol):
    """One side of a TCP relay; `peer` is the other side. Flow control: when our
    transport's buffer is full, the peer stops reading until it drains."""

    def __init__(self, peer: Pipe | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.pending: list[bytes] = []
        self.eof = False  # this side's peer sent EOF (passed on to the other side)
        self.connecting = False  # L4Client: the server connection is being made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
        else:
            peer.transport.write(data)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def eof_received(self) -> bool:
        """Half-close passes through; once both directions are done, both sockets close
        (else a server that half-closes first, as nginx's lingering close does, leaves
        both descriptors open for ever: a relay out of descriptors after ~500 requests)."""
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return self.connecting  # the client's EOF before the server connection: passed on then
        if peer.eof:  # the other direction ended before: nothing left to relay
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class L4Client(Pipe):
    def __init__(self, farm: Farm) -> None:
        super().__init__()
        self.farm = farm

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.connecting = True
        server = self.farm.choose(transport.get_extra_info("peername")[0])
        asyncio.ensure_future(self._connect(server))

    async def _connect(self, server: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, side = await loop.create_connection(lambda: Pipe(self), *server)
        except OSError:
            self.transport.close()
            return
        self.peer, self.connecting = side, False
        if self.transport.is_closing():
            side.transport.close()
            return
        # bytes that came before the pause took effect (uvloop may read once before
        # connection_made's pause_reading: they were lost, and the client waited for ever)
        if self.pending:
            side.transport.write(b"".join(self.pending))
            self.pending.clear()
        if self.eof:
            side.transport.write_eof()
        self.transport.resume_reading()


# -- entry point -------------------------------------------------------------------------
def _servers(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        host, _, port = item.rpartition(":")
        out.append((host, int(port)))
    return out


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    sticky: dict[str, tuple[str, int]] = {}  # shared: one client sticks across both VIPs
    plain, dec = Farm(_servers(args.servers), sticky), Farm(_servers(args.dec_servers or args.servers), sticky)
    if args.mode == "l7":
        servers = [await loop.create_server(lambda: ClientSide(plain, b"http"), args.host, args.http, backlog=4096)]
        if args.https:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args.cert, args.key)
            servers.append(await loop.create_server(lambda: ClientSide(dec, b"https"), args.host, args.https,
                                                    ssl=ctx, backlog=4096))
    else:
        servers = [await loop.create_server(lambda: L4Client(plain), args.host, args.http, backlog=4096)]
        if args.https:
            servers.append(await loop.create_server(lambda: L4Client(dec), args.host, args.https, backlog=4096))
    if args.ready:
        Path(args.ready).write_text("ready\n")
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("l7", "l4"), required=True)
    ap.add_argument("--host", default="127.0.0.100")
    ap.add_argument("--http", type=int, required=True)
    ap.add_argument("--https", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--servers", required=True, help="HOST:PORT,... behind the --http VIP")
    ap.add_argument("--dec-servers", help="HOST:PORT,... behind the --https VIP (default: --servers)")
    ap.add_argument("--ready", help="a file written once listening")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # as buddylb does (io/descriptors.py)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
