"""TCP transports of our own for plain VIPs: one epoll for every socket, below uvloop.

Why (issue 10, L4 new connection per request): `perf` under `wrk -H "Connection: close"`
puts a bare uvloop relay (bench/relay.py) at ~60 us of CPU per connection against
HAProxy's ~35, with the same syscalls: the difference is uvloop's per-transport machinery
(a libuv handle, a transport object, sockaddr conversions, a context copy, a
WeakValueDictionary entry, Handles for every callback, futures for create_connection).
A relay on one epoll of its own measured ~47 us per connection.  Over 400 lines: one
compiled module (tcp.pxd), so the poller's dispatch calls the transport's steps in C.

Theory of operation
- `Poller`: one per event loop.  Its epoll descriptor is registered once with the loop
  (`add_reader`); when it is ready `_events` takes the ready events (epoll_wait, no
  timeout) and hands them to the transports by descriptor.  Sockets are registered
  edge-triggered for reading and writing once, when made: no epoll_ctl when a direction
  pauses or resumes (pausing is a flag; a read edge that comes while paused is
  remembered, and resuming reads then).  A read shorter than READ_SIZE drained the socket
  (TCP); a full one is followed by another on the next pass (fairness).
- `Transport`: on a bare descriptor (its socket calls: tcp.pxd's `_c_*` C calls when
  compiled, io.sockcalls otherwise), the part of asyncio.Transport the L4 relay, its
  gates, the L7 client and L7's pooled server connections use (write with a buffer and
  pause_writing/resume_writing at HIGH/LOW, write_eof, close after the buffer drains,
  abort, pause/resume_reading, get_extra_info, set_protocol).  As in asyncio,
  `connection_lost` is never called from inside the call that caused it: it runs after
  the current batch of events (or on the next loop pass).
- `io.accept.Server`: accepts from a VIP's listening socket into Transports (its module).
- `connect`: starts a non-blocking connect and calls back when it is made or failed (no
  coroutine, no future); io.flow.Connector bounds it and cancels it with `abort()`;
  `attach` gives the made connection its protocol.

It must never parse a protocol: it only moves bytes between a socket and a protocol.
Plain VIPs, L4 and L7, are served here and every server connection is made here (L4's,
and L7's pool through io.pool.Pool.dial); TLS-terminated VIPs keep uvloop's SSL
transports for the client side (io/listeners.py).
"""
from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from _socket import socket as _Socket  # the C type: socket.socket's Python __init__/close cost a frame each
from typing import Any, Callable

from buddylb.io import sockcalls

try:  # Cython's pure-Python mode: `cython.compiled` is True only in the compiled module
    import cython
except ImportError:  # running from source without Cython installed: io.sockcalls serves
    from types import SimpleNamespace as _Namespace
    cython = _Namespace(compiled=False)

READ_SIZE = 256 * 1024  # one recv per readable edge (uvloop reads 256000)
HIGH = 64 * 1024  # write buffer above this: protocol.pause_writing() (asyncio's default)
LOW = 16 * 1024  # ... at or below this again: protocol.resume_writing()
EVENTS = 256  # events taken per epoll_wait
_IN = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_OUT = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_HUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR  # the peer's FIN (or an error) is queued
_MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_FAILED = select.EPOLLHUP | select.EPOLLERR  # on a connect's first event: read SO_ERROR
_WRITABLE = select.EPOLLOUT
_AGAIN = (BlockingIOError, InterruptedError)
_current: list = [None]  # the Poller of the running loop


def shared_poller(loop: asyncio.AbstractEventLoop) -> "Poller":
    """The Poller of `loop` (one per process and loop; a new loop replaces it)."""
    poller = _current[0]
    if poller is None or poller.loop is not loop:
        if poller is not None:
            poller.retire()
        poller = _current[0] = Poller(loop)
    return poller


def running_poller() -> "Poller":
    """The Poller of the running loop, found without asking asyncio which loop runs
    (`get_running_loop` makes a getpid system call) while the last one made is still
    running (one loop per process): L7's pool dials from inside the loop's callbacks."""
    poller = _current[0]
    if poller is not None and poller.loop.is_running():
        return poller
    return shared_poller(asyncio.get_running_loop())


class Poller:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ep = select.epoll()
        self.poll = self.ep.poll
        self.fds: dict[int, Transport] = {}
        self.soon: list[Transport] = []  # transports with a read to do on this pass
        self.dead: list = []  # (transport, exc): connection_lost still to call
        self.dials: list = []  # (transport, socket): connects asked for in this batch, not yet made
        self.batch = False  # inside _events: `soon` and `dead` are run at its end
        self.scheduled = False  # a call_soon of `_run` is pending
        loop.add_reader(self.ep.fileno(), self._events)

    def retire(self) -> None:
        """Its loop is gone (tests run one loop after another): free the descriptor."""
        try:
            self.loop.remove_reader(self.ep.fileno())
        except Exception:  # the loop is closed: nothing is registered any more
            pass
        self.ep.close()

    def add(self, t: "Transport") -> None:
        self.fds[t.fd] = t
        self.ep.register(t.fd, _MASK)

    def later(self) -> None:
        """Make sure `soon` and `dead` are run: at the end of this batch, or on the next pass."""
        if not self.batch and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._run)

    def _run(self) -> None:
        self.scheduled = False
        self.batch = True
        try:
            self._settle()
        finally:
            self.batch = False

    def _events(self) -> None:
        fds = self.fds
        self.batch = True
        try:
            for fd, ev in self.poll(0, EVENTS):
                t = fds.get(fd)
                if t is None:
                    continue
                try:
                    if t.waiter is not None:
                        t._connected(ev)
                    elif ev & _OUT and t.out is not None:
                        t._flush()
                    if ev & _IN and not t.closing:
                        if ev & _HUP:
                            t.hup = True
                        if t.reading:
                            t._read()
                        else:
                            t.ready = True
                except Exception as exc:  # a bug in a protocol: report it, drop the connection
                    t._failed(exc)
            self._settle()
        finally:
            self.batch = False

    def _settle(self) -> None:
        """The connects asked for in this batch, reads due on this pass (after a full
        read, a resumed reader), then the lost connections.  A read that fills READ_SIZE
        again waits for the next pass, so one fast sender cannot hold the loop."""
        while self.dials:
            self._dial()
        soon, self.soon = self.soon, []
        for t in soon:
            if t.reading and t.ready and not t.closing:
                try:
                    t._read()
                except Exception as exc:
                    t._failed(exc)
        while self.dead:
            dead, self.dead = self.dead, []
            for t, exc in dead:
                try:
                    t.protocol.connection_lost(exc)
                except Exception as err:
                    self.loop.call_exception_handler({"message": "connection_lost failed", "exception": err,
                                                      "transport": t, "protocol": t.protocol})
                t.protocol = None
        if (self.soon or self.dials) and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._run)

    def _dial(self) -> None:
        """The connect() syscalls of this batch, back to back (see connect())."""
        dials, self.dials = self.dials, []
        for t, sock in dials:
            err = sock.connect_ex(t.peername) if not t.closed else 0
            sock.detach()  # the Transport owns the descriptor (closed already if aborted)
            if t.closed:
                continue
            try:
                if err and err != errno.EINPROGRESS:
                    done, t.waiter = t.waiter, None
                    t._fatal(ConnectionAbortedError())  # closes the socket (no protocol: nothing to tell)
                    done(None, OSError(err, f"connect to {t.peername[0]}:{t.peername[1]}: {os.strerror(err)}"))
                else:
                    self.add(t)
            except Exception as exc:
                t._failed(exc)


class Transport:
    """One TCP socket, client or server side (L4, plain L7, L7's pool); see the module doc."""

    def __init__(self, poller: Poller, fd: int, protocol: Any, peername: Any) -> None:
        self.poller = poller
        self.fd = fd  # the socket's descriptor, ours: closed by _finish (no socket object)
        self.protocol = protocol
        self.peername = peername
        self.out: list | None = None  # bytes the socket did not take yet
        self.out_size = 0
        self.reading = False
        self.ready = False  # a read edge came while not reading
        self.closing = False  # close() or abort() was called (or the socket failed)
        self.closed = False  # the socket is closed
        self.eof = 0  # 1: write_eof() asked (after the buffer), 2: done
        self.ended = False  # we read the peer's EOF: nothing more to read
        self.hup = False  # epoll said the peer's EOF is queued: read until we see it
        self.paused = False  # we told the protocol to pause writing
        self.waiter: Callable[[Any, Any], None] | None = None  # connect()'s callback: set while connecting

    # -- the asyncio.Transport interface ---------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """peername, sockname, and "socket": a socket on a dup of the descriptor (options
        set on it apply to the connection; closing it does not close the connection)."""
        if name == "peername" and self.peername is not None:
            return self.peername
        if name not in ("peername", "sockname", "socket") or self.closed:
            return default
        try:
            if name == "socket":
                return _Socket(fileno=os.dup(self.fd))
            if name == "sockname":
                return sockcalls.call(self.fd, "getsockname")
            self.peername = sockcalls.call(self.fd, "getpeername")
            return self.peername
        except OSError:
            return default

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closing

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if self.reading or self.closing or self.ended:
            return
        self.reading = True
        if self.ready:
            self.poller.soon.append(self)
            self.poller.later()

    def get_write_buffer_size(self) -> int:
        return self.out_size

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: Any) -> None:
        if self.closing:
            return  # as asyncio: writes after close() are dropped
        if self.eof:
            raise RuntimeError("write() after write_eof()")
        if not data:
            return
        if self.out is None:
            n = self._send(data)
            if n < 0:
                return
            if n == len(data):
                return
            rest = bytes(data[n:])
            self.out = [rest]
            self.out_size = len(rest)
        else:
            self.out.append(bytes(data))
            self.out_size += len(data)
        if self.out_size > HIGH and not self.paused:
            self.paused = True
            self.protocol.pause_writing()

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        if self.closing or self.eof:
            return
        self.eof = 1
        if self.out is None:
            self._shutdown()

    def close(self) -> None:
        """Stop reading; close once the buffer is sent; then connection_lost(None)."""
        if self.closing:
            return
        self.closing = True
        self.reading = False
        if self.out is None:
            self._finish(None)

    def abort(self) -> None:
        """Close now, dropping what the buffer holds; then connection_lost(None)."""
        self.closing = True
        self.reading = False
        self.out = None
        self._finish(None)

    # -- the poller's side -------------------------------------------------------------------
    def _read(self) -> None:
        """One read per edge: a short read drained the socket, unless the peer's EOF came
        with the bytes (`hup`): no edge will come for it, so it is read at once."""
        self.ready = False
        while True:
            try:
                data = _c_recv(self.fd, READ_SIZE) if cython.compiled else sockcalls.recv(self.fd, READ_SIZE)
            except _AGAIN:
                return
            except OSError as exc:  # reset by the peer, ...
                self._fatal(exc)
                return
            if not data:
                break
            if len(data) == READ_SIZE:  # maybe more: read again on this pass, after the others
                self.ready = True
                self.poller.soon.append(self)
                self.protocol.data_received(data)
                return
            self.protocol.data_received(data)
            if not self.hup:
                return
            if not self.reading or self.closing:  # paused by data_received: the EOF waits for resume
                self.ready = True
                return
        self.reading = False  # EOF: nothing more will come
        self.ended = True
        if not self.protocol.eof_received():
            self.close()

    def _send(self, data: Any) -> int:
        """One send(): the bytes taken, 0 when the socket is full, -1 when it failed (the
        transport is then failing: _fatal)."""
        try:
            if cython.compiled:
                n = _c_send(self.fd, data)
                return n if n >= 0 else 0  # -1: EAGAIN, without an exception object
            return sockcalls.send(self.fd, data)
        except _AGAIN:
            return 0
        except OSError as exc:
            self._fatal(exc)
            return -1

    def _flush(self) -> None:
        out = self.out
        assert out is not None
        self.out = None
        size = self.out_size
        data = out[0] if len(out) == 1 else b"".join(out)
        n = self._send(data)
        if n < 0:
            return
        size -= n
        self.out_size = size
        if size:
            self.out = [data[n:]]
            return
        if self.paused and size <= LOW:
            self.paused = False
            self.protocol.resume_writing()
            if self.out is not None:  # it wrote again at once
                return
        if self.closing:
            self._finish(None)
        elif self.eof == 1:
            self._shutdown()

    def _shutdown(self) -> None:
        self.eof = 2
        try:
            _c_shutdown_wr(self.fd) if cython.compiled else sockcalls.shutdown_wr(self.fd)
        except OSError as exc:
            self._fatal(exc)

    def _fatal(self, exc: BaseException) -> None:
        self.closing = True
        self.reading = False
        self.out = None
        self._finish(exc)

    def _failed(self, exc: BaseException) -> None:
        self.poller.loop.call_exception_handler({"message": "io.tcp transport callback failed", "exception": exc,
                                                 "transport": self, "protocol": self.protocol})
        self.abort()

    def _finish(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        poller = self.poller
        if poller.fds.get(self.fd) is self:
            del poller.fds[self.fd]
        c_close(self.fd) if cython.compiled else sockcalls.close(self.fd)  # also leaves the epoll set
        if self.protocol is not None and self.waiter is None:
            poller.dead.append((self, exc))
            poller.later()

    def _connected(self, ev: int) -> None:
        """The first event of a connect(): it succeeded or failed (SO_ERROR says); tell
        the callback connect() was given."""
        done, self.waiter = self.waiter, None
        assert done is not None
        if ev & _IN:
            self.ready = True  # the server may have spoken already: read once a protocol is there
        # writable with no error flag is a made connection: SO_ERROR is read (a syscall)
        # only when epoll reports a failure, or no writability (issue 10)
        err = 0
        if ev & _FAILED or not ev & _WRITABLE:
            err = _c_so_error(self.fd) if cython.compiled else sockcalls.so_error(self.fd)
        if err:  # OSError(errno, ...) is the matching subclass (ConnectionRefusedError, ...)
            self._fatal(ConnectionAbortedError())  # closes the socket (no protocol: nothing to tell)
            done(None, OSError(err, f"connect to {self.peername[0]}:{self.peername[1]}: {os.strerror(err)}"))
        else:
            done(self, None)

    def _start(self) -> None:
        """A protocol is attached (connect() finished): start reading."""
        self.reading = True
        if self.ready:
            self.poller.soon.append(self)
            self.poller.later()


def connect(poller: Poller, address: str, port: int, done: Callable[[Any, Any], None]) -> Transport:
    """Start a server connection (numeric address, TCP_NODELAY): a callback, not a
    coroutine (issue 10: no coroutine, no future, no loop hop per new connection).

    Returns the connecting Transport at once; its first epoll event calls `done(t, None)`
    (connected: `t` has no protocol yet, `attach` gives it one) or `done(None, exc)` (an
    OSError: refused, unreachable; the socket is closed), never from inside this call.
    An OSError raised here (no descriptor) means nothing was opened.  The connect()
    syscall itself is made at the end of the Poller's batch, back to back with the
    others asked for in it (Poller._dial): `perf` put ~4-6 us per connection in waking
    the server's process for each connect when Python work separated them (issue 10).
    `t.abort()` before `done` is called cancels: the socket is closed and `done` is not
    called (before the end of the batch: no connection is attempted)."""
    sock = _Socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = Transport(poller, sock.fileno(), None, (address, port))
    except BaseException:
        sock.close()
        raise
    t.waiter = done
    poller.dials.append((t, sock))
    poller.later()
    return t


def attach(t: Transport, protocol: Any) -> None:
    """Give a connected Transport (connect()'s answer) its protocol and start reading."""
    t.protocol = protocol
    protocol.connection_made(t)
    if not t.closing:
        t._start()
