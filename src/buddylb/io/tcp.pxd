# Cython declarations for tcp.py (pure-Python mode); unused without Cython.  The poller,
# transports and servers as extension types: the per-event dispatch reads C fields and
# calls the transport's steps in C (cpdef).  A field tcp.py gains must be declared here.
#
# The socket calls on a connection's descriptor (accept4, recv, send, shutdown, close,
# SO_ERROR) as C calls: tcp.py calls the `_c_*` helpers below under `cython.compiled` and
# the os/_socket calls otherwise (issue 10, L4 new connection: no socket object per
# accepted connection, so no getsockname() to validate its descriptor, no ioctl(FIONBIO)
# after the accept, no method lookup per call).  They raise OSError as the socket module
# does (errno and strerror, the matching subclass: BlockingIOError, ConnectionResetError).
cimport cython
from cpython.exc cimport PyErr_SetFromErrno
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport errno as c_errno, EAGAIN, EINTR
from posix.unistd cimport close as c_close
from libc.string cimport strerror

cdef extern from "Python.h":
    PyObject* _c_new_bytes "PyBytes_FromStringAndSize"(const char* v, Py_ssize_t n)
    int _PyBytes_Resize(PyObject** pv, Py_ssize_t n) except -1
    object PyUnicode_FromString(const char* s)

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    int c_accept4 "accept4"(int fd, sockaddr* addr, socklen_t* n, int flags)
    ssize_t c_recv "recv"(int fd, void* buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void* buf, size_t n, int flags)
    int c_shutdown "shutdown"(int fd, int how)
    int c_getsockopt "getsockopt"(int fd, int level, int name, void* value, socklen_t* n)
    enum:
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        MSG_NOSIGNAL
        SHUT_WR
        SOL_SOCKET
        SO_ERROR
        AF_INET
        AF_INET6

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id
    unsigned short ntohs(unsigned short)
    unsigned int ntohl(unsigned int)

cdef extern from "<arpa/inet.h>" nogil:
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)


cdef inline int _c_raise(int err) except -1:
    """OSError(errno, strerror) as the socket module raises it (the errno's subclass)."""
    raise OSError(err, strerror(err).decode())


cdef inline object _c_peer(sockaddr_storage* ss):
    """The address tuple socket.accept() gives: (host, port) or (host, port, flowinfo, scope_id)."""
    cdef char host[64]
    cdef sockaddr_in* a4
    cdef sockaddr_in6* a6
    if ss.ss_family == AF_INET:
        a4 = <sockaddr_in*>ss
        inet_ntop(AF_INET, &a4.sin_addr, host, sizeof(host))
        return (PyUnicode_FromString(host), ntohs(a4.sin_port))
    if ss.ss_family == AF_INET6:
        a6 = <sockaddr_in6*>ss
        inet_ntop(AF_INET6, &a6.sin6_addr, host, sizeof(host))
        return (PyUnicode_FromString(host), ntohs(a6.sin6_port), ntohl(a6.sin6_flowinfo), a6.sin6_scope_id)
    return None  # not TCP over IP: get_extra_info("peername") asks the socket


cdef inline tuple _c_accept(int lfd):
    """accept4(SOCK_NONBLOCK | SOCK_CLOEXEC): (descriptor, peer address)."""
    cdef sockaddr_storage ss
    cdef socklen_t n = sizeof(ss)
    cdef int fd = c_accept4(lfd, <sockaddr*>&ss, &n, SOCK_NONBLOCK | SOCK_CLOEXEC)
    if fd < 0:
        PyErr_SetFromErrno(OSError)
    return (fd, _c_peer(&ss))


cdef inline object _c_recv(int fd, Py_ssize_t size):
    """One recv() into a new bytes object of `size`, shrunk to what came (as socket.recv)."""
    cdef PyObject* p = _c_new_bytes(NULL, size)
    cdef ssize_t n
    cdef int err
    cdef object data
    if p == NULL:
        raise MemoryError()
    n = c_recv(fd, PyBytes_AS_STRING(<object>p), size, 0)
    while n < 0 and c_errno == EINTR:  # retried, as socket.recv does (PEP 475)
        n = c_recv(fd, PyBytes_AS_STRING(<object>p), size, 0)
    if n < 0:
        err = c_errno
        Py_DECREF(<object>p)
        _c_raise(err)
    if n != size:
        _PyBytes_Resize(&p, n)  # frees and sets NULL on failure (it raised)
    data = <object>p
    Py_DECREF(data)  # the cast took a reference of its own
    return data


cdef inline Py_ssize_t _c_send(int fd, object data) except -2:
    """One send() of a bytes-like object: the bytes taken; -1 when the socket is full
    (EAGAIN: no exception object for it); other errors raise OSError.  EINTR is retried,
    as socket.send does (PEP 475)."""
    cdef Py_buffer view
    cdef ssize_t n
    cdef int err
    if type(data) is bytes:
        while True:
            n = c_send(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), MSG_NOSIGNAL)
            if n >= 0 or c_errno != EINTR:
                break
    else:
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        while True:
            n = c_send(fd, view.buf, view.len, MSG_NOSIGNAL)
            if n >= 0 or c_errno != EINTR:
                break
        err = c_errno
        PyBuffer_Release(&view)
        if n < 0:
            return -1 if err == EAGAIN else _c_raise(err)
    if n < 0:
        return -1 if c_errno == EAGAIN else _c_raise(c_errno)  # EAGAIN: EWOULDBLOCK on Linux
    return n


cdef inline int _c_shutdown_wr(int fd) except -1:
    if c_shutdown(fd, SHUT_WR) < 0:
        PyErr_SetFromErrno(OSError)
    return 0


cdef inline int _c_so_error(int fd) except -1:
    cdef int err = 0
    cdef socklen_t n = sizeof(err)
    if c_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) < 0:
        PyErr_SetFromErrno(OSError)
    return err


cdef class Transport

# The dispatch loops hold their transport as a Transport: its fields are C reads and its
# steps C calls (an untyped local made each a Python attribute lookup and method call:
# five lookups and a call per event, issue 10).
cdef class Poller:
    cdef public object loop, ep, poll
    cdef public dict fds
    cdef public list soon, dead, dials
    cdef public bint batch, scheduled
    cpdef add(self, Transport t)
    cpdef later(self)
    @cython.locals(t=Transport, fd=int, ev=long)
    cpdef _events(self)
    @cython.locals(t=Transport)
    cpdef _settle(self)
    @cython.locals(t=Transport)
    cpdef _dial(self)

cdef class Transport:
    cdef public Poller poller
    cdef public object protocol, peername, out, waiter
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

cpdef attach(Transport t, object protocol)
