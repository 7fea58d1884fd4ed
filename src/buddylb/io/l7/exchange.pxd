# Cython declarations for exchange.py (pure-Python mode); unused without Cython.  The
# machine's fields are declared on its base class (upstream.pxd); the steps of a request
# are cpdef, so one step calls the next in C.
cimport cython
from buddylb.io.l7.upstream cimport Upstream

cdef class Exchange(Upstream):
    cpdef client_data(self, object data)
    cpdef _run(self, list events)
    cpdef _pump(self)
    cpdef _body_event(self, object ev)
    cpdef bint _begin(self, object head)
    cpdef _dispatch(self)
    cpdef bint _follow_reload(self)
    cpdef decided(self, object d)
    cpdef connected(self, object conn)
    cpdef _to_server(self, object data)
    cpdef _drop_conn(self)
    cpdef _finish(self, object status)
    cpdef _enter(self, object phase, double seconds, object now=*)
    cpdef _arm(self, double due)
    cpdef _pause_client(self)
    cpdef _resume_client(self)
