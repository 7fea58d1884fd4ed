# Cython declarations for tcp.py (pure-Python mode); unused without Cython.  The poller,
# transports and servers as extension types: the per-event dispatch reads C fields and
# calls the transport's steps in C (cpdef).  A field tcp.py gains must be declared here.
cdef class Poller:
    cdef public object loop, ep, poll
    cdef public dict fds
    cdef public list soon, dead
    cdef public bint batch, scheduled
    cpdef later(self)
    cpdef _settle(self)

cdef class Transport:
    cdef public Poller poller
    cdef public object sock, protocol, peername, out, waiter
    cdef public int fd, eof
    cdef public Py_ssize_t out_size
    cdef public bint reading, ready, closing, closed, ended, hup, paused
    cpdef _read(self)
    cdef Py_ssize_t _send(self, object data)
    cpdef _flush(self)
    cpdef _shutdown(self)
    cpdef _fatal(self, object exc)
    cpdef _failed(self, object exc)
    cpdef _finish(self, object exc)
    cpdef _connected(self, int ev)
    cpdef _start(self)

cdef class Server:
    cdef public Poller poller
    cdef public object sock, accepted, family
    cdef public int fd
    cdef public bint closed
