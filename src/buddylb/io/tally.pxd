# Cython declarations for tally.py (pure-Python mode); unused without Cython.  The counts
# live in C fields, so the decision path's one call (`count`) is a C call from Cython callers.
cimport cython
from buddylb.io.record cimport FlowRecord

cdef class Tally:
    cdef public dict decisions, buddy_hits, resticks, routes, responses
    cdef public Py_ssize_t total
    cdef public object sink

    cpdef count(self, object d)
    cpdef record(self, FlowRecord rec)

@cython.locals(tally=Tally)
cpdef counted_decide(object b, object vip, object flow, object snap, bint requeue=*)
