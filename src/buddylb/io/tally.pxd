# Cython declarations for tally.py (pure-Python mode); unused without Cython.  The counts
# live in C fields, so the decision path's one call (`count`) is a C call from Cython callers.
cimport cython
from buddylb.io.record cimport FlowRecord
from buddylb.core.decision cimport Decision as CDecision, Flow as CFlow
from buddylb.core.decide cimport decide

cdef class Tally:
    cdef public dict decisions, buddy_hits, resticks, routes, responses
    cdef public Py_ssize_t total
    cdef public object sink

    @cython.locals(cd=CDecision)
    cpdef count(self, object d)
    cpdef record(self, FlowRecord rec)

# decide() as a C call (its arguments typed: no argument parsing per decision)
@cython.locals(tally=Tally, d=CDecision)
cpdef counted_decide(object b, object vip, CFlow flow, object snap, bint requeue=*)
