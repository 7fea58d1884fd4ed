# Cython declarations for flow.py (pure-Python mode); unused without Cython.  One Lease
# is made and released per L7 request: as an extension type its creation is one
# allocation with C fields, and release() reads them without descriptor lookups.
cimport cython
from buddylb.io.wheel cimport Wheel
# the decision typed (C reads of its fields), and the close as a C call
from buddylb.core.decision cimport Decision as CDecision
from buddylb.core.decide cimport connection_closed

cdef class Lease:
    cdef public object balancer, holder
    cdef public CDecision decision
    cdef public bint released

    @cython.locals(d=CDecision)
    cpdef track(self, object holder)
    @cython.locals(d=CDecision)
    cpdef release(self)
    cpdef _given_back(self)

# One Connector per new server connection (L4: every client connection): its fields are
# C slots and the wheel it arms is typed, so arming, the answer and the retry run as C.
cdef class Connector:
    cdef public object b, flow, open_conn, done, slot, owner, handle
    cdef public Lease lease
    cdef public Wheel wheel
    cdef public double timeout
    cdef public Py_ssize_t attempt
