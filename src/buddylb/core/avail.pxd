# Cython declarations for avail.py (pure-Python mode); unused without Cython.  core.decide
# cimports the C functions, so its hit path checks availability without a Python call.
cimport cython
from buddylb.core.state cimport RuntimeState

@cython.locals(rs=RuntimeState)
cpdef bint _available(object state, object m) except -1
@cython.locals(rs=RuntimeState)
cpdef _opened(object state, object m)
@cython.locals(primaries=tuple, backups=tuple)
cpdef tuple available_members(object farm, object state)
cpdef list _buddies(object ctx, object state, object group, object farm)
@cython.locals(buddies=list, backup=bint)
cpdef list _buddies_in(object state, object members, object farm)

cdef class Buddy4:
    cdef public object group, kept, pick
    cdef public tuple members

cpdef str _rule4(str group, bint remembered)
