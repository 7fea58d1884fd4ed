# Cython declarations for record.py (pure-Python mode); unused without Cython.  One
# FlowRecord is made per L7 request: as an extension type its creation and the counters
# the exchange bumps (bytes in and out) are C stores, not descriptor calls.
cimport cython
from buddylb.core.decision cimport Decision as CDecision  # decision(): C reads of its fields

cdef class FlowRecord:
    cdef public object client, mode, vip, class_name, farm, rserver, port, outcome, status, method, path, error
    cdef public double ts, duration_s
    cdef public Py_ssize_t bytes_in, bytes_out

    cpdef decision(self, CDecision d)
    @cython.locals(tenths_ms=double)
    cpdef end(self, double wall)
