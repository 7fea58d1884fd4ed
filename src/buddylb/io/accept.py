"""The accept side of io.tcp: a plain VIP's listening socket, accepted into io.tcp
Transports on their descriptors, below uvloop.

Why a module of its own: io/tcp.py reached the 500-line bar.  Why accept here rather
than through uvloop (issue 10, L4 new connection per request): the listening socket is
registered once with the loop and accepted from in batches until EAGAIN (at most
ACCEPT_BATCH per pass); compiled, each connection is one accept4(SOCK_NONBLOCK |
SOCK_CLOEXEC) with its peer's address tuple made in C (tcp.pxd `_c_accept`), no socket
object, no getsockname(), no ioctl(FIONBIO).  The protocol comes from the ListenerSet's
factory, so maxconn, conn-limit, accept-proxy and ACL gates apply as on an asyncio
Server.  A batch of accepts is one batch of the Poller: the server connects the new
connections ask for are made back to back at its end (tcp.connect), and connection_lost
of those a gate refused runs there too, with no call_soon per connection.
"""
from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Callable

from buddylb.io import sockcalls
from buddylb.io.tcp import Poller, Transport

try:  # Cython's pure-Python mode: `cython.compiled` is True only in the compiled module
    import cython
except ImportError:  # running from source without Cython installed: io.sockcalls serves
    from types import SimpleNamespace as _Namespace
    cython = _Namespace(compiled=False)

log = logging.getLogger("buddylb.tcp")

ACCEPT_BATCH = 128  # accepts per loop pass on one VIP (the rest wait for the next pass)
_AGAIN = (BlockingIOError, InterruptedError)


class Server:
    """Accepts on `sock` (a dup of a VIP's listening socket, closed by `close()`)."""

    def __init__(self, poller: Poller, sock: socket.socket, accepted: Callable[[], Any]) -> None:
        self.poller = poller
        self.sock = sock
        self.fd = sock.fileno()
        self.accepted = accepted  # the protocol factory (ListenerSet._accepted for this VIP)
        self.closed = False
        sock.setblocking(False)
        # Linux copies TCP_NODELAY from the listening socket to every accepted one: set
        # once here, it saves a setsockopt per accepted connection (issue 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        poller.loop.add_reader(self.fd, self._accept)

    def _accept(self) -> None:
        """One batch of accepts (see the module doc)."""
        poller = self.poller
        poller.batch = True  # connects, reads and losses the protocols ask for: at the end
        try:
            self._take()
        finally:
            poller.batch = False
        poller._settle()

    def _take(self) -> None:
        poller, lfd = self.poller, self.fd
        for _ in range(ACCEPT_BATCH):
            if self.closed:  # a protocol factory paused accept (maxconn)
                return
            try:
                fd, addr = _c_accept(lfd) if cython.compiled else sockcalls.accept(self.sock)
            except _AGAIN:
                return
            except OSError as exc:  # EMFILE etc.: the ListenerSet's watch pauses accept (descriptors.py)
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                log.debug("accept on %s failed: %s", self.sock.getsockname(), exc)
                return
            try:  # TCP_NODELAY: inherited from the listener (__init__)
                protocol = self.accepted()
            except BaseException:
                c_close(fd) if cython.compiled else sockcalls.close(fd)
                raise
            t = Transport(poller, fd, protocol, addr)
            poller.add(t)
            t.reading = True
            try:
                protocol.connection_made(t)
            except Exception as exc:
                t._failed(exc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.poller.loop.remove_reader(self.fd)
        self.sock.close()

