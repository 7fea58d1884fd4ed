"""io/tcp.py, the L4 relay's own transports, on a real loop with real loopback sockets:
the asyncio.Transport behaviour the relay relies on (connect and its failures, data and
EOF in one segment, half-close, flow control, close after the buffer drains, abort,
pausing reads, connection_lost never inside the call that caused it, batch accept).
`connect` is a callback (no coroutine): `dial` below awaits its answer."""
from __future__ import annotations

import asyncio
import os
import select
import socket

import pytest
import uvloop

from buddylb.io import accept, tcp

HOST = "127.0.0.1"


class Recorder:
    """A protocol that records every event in order."""

    def __init__(self, keep_open: bool = True) -> None:
        self.events: list = []
        self.data = bytearray()
        self.keep_open = keep_open
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()
        self.eof = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        if not self.events or self.events[-1] != "data":
            self.events.append("data")

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run(coro):
    return uvloop.run(asyncio.wait_for(coro, 20))


async def dial(poller, factory, host: str, port: int):
    """tcp.connect's callback as an awaitable: (transport, protocol) once connected."""
    answer = asyncio.get_running_loop().create_future()
    calls: list = []

    def done(t, exc) -> None:
        calls.append((t, exc))
        if exc is not None:
            answer.set_exception(exc)
        else:
            answer.set_result(t)

    tcp.connect(poller, host, port, done)
    assert calls == []  # never answered from inside connect()
    t = await answer
    assert len(calls) == 1 and t.get_protocol() is None
    p = factory()
    tcp.attach(t, p)
    return t, p


async def backend(handler):
    """A plain asyncio server whose connections run `handler(reader, writer)`."""
    server = await asyncio.start_server(handler, HOST, 0)
    return server, server.sockets[0].getsockname()[1]


def test_data_and_eof_in_one_segment_both_reach_the_protocol():
    async def main():
        async def answer(reader, writer):
            data = await reader.read(100)
            writer.write(b"answer:" + data)
            writer.write_eof()  # the FIN rides with the bytes: no second read edge comes for it
            await reader.read()
            writer.close()

        server, port = await backend(answer)
        poller = tcp.shared_poller(asyncio.get_running_loop())
        t, p = await dial(poller, Recorder, HOST, port)
        assert t.get_extra_info("peername") == (HOST, port)
        t.write(b"ping")
        await p.eof
        assert bytes(p.data) == b"answer:ping" and p.events == ["made", "data", "eof"]
        t.write_eof()  # our half: the server reads EOF and closes
        t.close()
        assert await p.lost is None
        server.close()
        return p.events

    assert run(main()) == ["made", "data", "eof", "lost"]


def test_refused_connect_raises_and_leaves_no_descriptor():
    async def main():
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]  # bound, not listening: refused
        poller = tcp.shared_poller(asyncio.get_running_loop())
        before = open_fds()
        with pytest.raises(ConnectionRefusedError):
            await dial(poller, Recorder, HOST, port)
        return before, open_fds(), len(poller.fds)

    before, after, registered = run(main())
    assert after == before and registered == 0


def test_an_aborted_connect_closes_its_socket_and_never_answers():
    async def main():
        loop = asyncio.get_running_loop()
        poller = tcp.shared_poller(loop)
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(1)  # it never accepts; the kernel completes the handshake meanwhile
        before = open_fds()
        answers: list = []
        t = tcp.connect(poller, HOST, listener.getsockname()[1], lambda made, exc: answers.append((made, exc)))
        await asyncio.sleep(0)  # the connect() syscall: at the end of the batch (here the next pass)
        assert len(poller.fds) == 1 and open_fds() == before + 1
        listener.close()
        t.abort()  # the client left before the connect was answered
        await asyncio.sleep(0.05)  # the connect's event would have come by now
        return before - 1, open_fds(), len(poller.fds), answers  # less the listener

    before, after, registered, answers = run(main())
    assert after == before and registered == 0 and answers == []


def test_connects_are_made_at_the_end_of_the_batch_and_an_abort_before_makes_none():
    """tcp.connect() opens the socket at once but makes the connect() syscall at the end
    of the Poller's batch (with the others asked for in it, back to back); an abort()
    before then closes the socket with no connection attempted and no answer."""
    async def main():
        poller = tcp.shared_poller(asyncio.get_running_loop())
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(4)
        before = open_fds()
        answers: list = []
        t = tcp.connect(poller, HOST, listener.getsockname()[1], lambda made, exc: answers.append((made, exc)))
        opened, pending = open_fds(), select.select([listener], [], [], 0)[0]
        t.abort()
        for _ in range(3):
            await asyncio.sleep(0)  # the pass that would have made the connect
        after, attempted = open_fds(), select.select([listener], [], [], 0.05)[0]
        listener.close()
        return before, opened, pending, after, attempted, answers, len(poller.fds)

    before, opened, pending, after, attempted, answers, registered = run(main())
    assert opened == before + 1 and pending == []
    assert after == before and attempted == [] and answers == [] and registered == 0


def test_flow_control_and_close_after_the_buffer_drains():
    """A server that does not read: writes pile up, pause_writing; once it reads,
    resume_writing; close() sends every byte before the FIN."""
    size = 8 * 1024 * 1024
    got = bytearray()

    async def main():
        gate = asyncio.Event()
        done = asyncio.get_running_loop().create_future()

        async def slow(reader, writer):
            await gate.wait()
            while chunk := await reader.read(1 << 20):
                got.extend(chunk)
            writer.close()
            done.set_result(None)

        server, port = await backend(slow)
        poller = tcp.shared_poller(asyncio.get_running_loop())
        t, p = await dial(poller, Recorder, HOST, port)
        t.write(b"x" * size)
        assert "pause" in p.events and t.get_write_buffer_size() > tcp.HIGH
        t.close()
        assert "lost" not in p.events  # not while bytes wait, and never inside close()
        gate.set()
        await p.lost
        await done  # the last bytes were in the kernel's buffers when our socket closed
        server.close()
        return p.events

    events = run(main())
    assert events == ["made", "pause", "resume", "lost"]
    assert len(got) == size


def test_abort_drops_the_buffer_and_connection_lost_comes_later():
    async def main():
        async def idle(reader, writer):
            await reader.read()
            writer.close()

        server, port = await backend(idle)
        poller = tcp.shared_poller(asyncio.get_running_loop())
        t, p = await dial(poller, Recorder, HOST, port)
        t.write(b"y" * (4 * 1024 * 1024))
        t.abort()
        inside = list(p.events)
        exc = await p.lost
        server.close()
        return inside, exc, t.get_write_buffer_size(), t.is_closing()

    inside, exc, buffered, closing = run(main())
    assert "lost" not in inside and exc is None and closing
    assert buffered >= 0


def test_server_accepts_in_batches_and_paused_reads_resume():
    """accept.Server: every client gets a protocol with its address; bytes that arrive
    while reading is paused are delivered on resume (the edge is remembered)."""
    async def main():
        loop = asyncio.get_running_loop()
        poller = tcp.shared_poller(loop)
        made: list[Recorder] = []

        def factory():
            p = Recorder(keep_open=False)
            made.append(p)
            return p

        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        server = accept.Server(poller, listener.dup(), factory)
        clients = []
        for _ in range(5):
            r, w = await asyncio.open_connection(HOST, port)
            clients.append((r, w))
        for _ in range(100):
            if len(made) == 5:
                break
            await asyncio.sleep(0.01)
        first = made[0]
        first.transport.pause_reading()
        clients[0][1].write(b"held")
        await clients[0][1].drain()
        await asyncio.sleep(0.05)
        held = bytes(first.data)
        first.transport.resume_reading()
        for _ in range(100):
            if first.data:
                break
            await asyncio.sleep(0.01)
        peers = [p.transport.get_extra_info("peername") for p in made]
        ours = [w.get_extra_info("sockname") for _, w in clients]
        for _, w in clients:
            w.close()
        for p in made:
            await p.lost  # EOF, eof_received says close
        server.close()
        listener.close()
        return held, bytes(first.data), sorted(peers), sorted(ours), made[0].events

    held, later, peers, ours, events = run(main())
    assert held == b"" and later == b"held"
    assert peers == ours
    assert events == ["made", "data", "eof", "lost"]
