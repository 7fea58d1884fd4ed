# Cython declarations for flow.py (pure-Python mode); unused without Cython.  One Lease
# is made and released per L7 request: as an extension type its creation is one
# allocation with C fields, and release() reads them without descriptor lookups.
cimport cython

cdef class Lease:
    cdef public object balancer, decision, holder
    cdef public bint released

    cpdef track(self, object holder)
    cpdef release(self)
    cpdef _given_back(self)
