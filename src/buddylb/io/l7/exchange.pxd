# Cython declarations for exchange.py (pure-Python mode); unused without Cython.  The
# machine's fields are declared on its base class (upstream.pxd); the steps of a request
# are cpdef, so one step calls the next in C.
cimport cython
from buddylb.io.l7.upstream cimport Upstream
from buddylb.core.decision cimport Decision as CDecision
from buddylb.http.response cimport ResponseParser as CResponseParser

cdef class Exchange(Upstream):
    @cython.locals(now=double)
    cpdef client_data(self, object data)
    cpdef _run(self, list events, double now)
    cpdef _pump(self, double now)
    cpdef _body_event(self, object ev)
    @cython.locals(rp=CResponseParser)
    cpdef bint _begin(self, object head, double now)
    cpdef _dispatch(self, double now)
    cpdef decided(self, CDecision d, double now=*)
    cpdef connected(self, object conn, double now=*)
    cpdef _to_server(self, object data)
    cpdef _drop_conn(self)
    cpdef _pause_client(self)
    cpdef _resume_client(self)
