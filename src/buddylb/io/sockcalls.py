"""The socket calls io/tcp.py makes on a bare descriptor, in plain Python: the fallback
for tcp.pxd's `_c_*` C calls when tcp.py runs uncompiled (BUDDYLB_PURE=1, no compiler).

Why a module of its own: tcp.py holds no socket objects (issue 10, L4 new connection: a
socket object per accepted connection cost a getsockname() to validate the descriptor,
an ioctl(FIONBIO) and a method lookup per call).  Compiled, the calls are C calls
declared in tcp.pxd; these are their twins with the same results and errors (OSError
with the errno's subclass, as the socket module raises), so both paths run one tcp.py.
"""
from __future__ import annotations

import errno
import os
import socket
from _socket import socket as _Socket
from typing import Any

recv = os.read  # a socket: read() is recv() without flags
send = os.write  # ... and write() is send() (Python ignores SIGPIPE: EPIPE raises)
close = os.close


def accept(listener: socket.socket) -> tuple[int, Any]:
    """(descriptor, peer address) of one accepted connection, non-blocking and
    close-on-exec; BlockingIOError when none waits."""
    fd, addr = listener._accept()  # type: ignore[attr-defined]
    try:
        os.set_blocking(fd, False)
    except OSError:  # reset before we got to it
        os.close(fd)
        raise ConnectionAbortedError(errno.ECONNABORTED, "accepted connection gone before it was non-blocking") from None
    return fd, addr


def call(fd: int, method: str, *args: Any) -> Any:
    """One socket method on a bare descriptor: a socket object around it for the call,
    detached again (the descriptor stays its owner's)."""
    sock = _Socket(fileno=fd)
    try:
        return getattr(sock, method)(*args)
    finally:
        sock.detach()


def shutdown_wr(fd: int) -> None:
    call(fd, "shutdown", socket.SHUT_WR)


def so_error(fd: int) -> int:
    return call(fd, "getsockopt", socket.SOL_SOCKET, socket.SO_ERROR)
