# Cython declarations for accept.py (pure-Python mode); unused without Cython.  The
# Server as an extension type calling tcp's Poller and Transport in C, and accept4 and
# close as C calls (tcp.pxd's `_c_accept`).
from posix.unistd cimport close as c_close
from buddylb.io.tcp cimport Poller, Transport, _c_accept

cdef class Server:
    cdef public Poller poller
    cdef public object sock, accepted
    cdef public int fd
    cdef public bint closed
    cpdef _take(self)
