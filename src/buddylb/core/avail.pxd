# Cython declarations for avail.py (pure-Python mode); unused without Cython.  core.decide
# cimports the C functions, so its hit path checks availability without a Python call.
cimport cython
from buddylb.core.state cimport MemberCell, RuntimeState

@cython.locals(rs=RuntimeState)
cpdef bint _available(object state, object m) except -1
@cython.locals(rs=RuntimeState)
cpdef _opened(object state, object m)
@cython.locals(primaries=tuple, backups=tuple)
cpdef tuple available_members(object farm, object state)
@cython.locals(buddies=list, backup=bint)
cpdef list _buddies(object ctx, object state, object group, object farm)

cdef class Pick:
    cdef public object member
    cdef public bint inservice, limit
    cdef public Py_ssize_t mi
    cdef public MemberCell cell

@cython.locals(c=MemberCell)
cdef MemberCell _pick_cell(RuntimeState rs, Pick pk)
@cython.locals(rs=RuntimeState, c=MemberCell)
cpdef bint _pick_available(object state, Pick pk) except -1
@cython.locals(c=MemberCell)
cpdef int _pick_opened(object state, Pick pk) except -1
@cython.locals(rs=RuntimeState, out=list, pk=Pick)
cpdef tuple _available_picks(object state, tuple primaries)
@cython.locals(out=list, backup=bint, pk=Pick)
cpdef list _picks_in(object state, tuple picks, tuple primaries)

cdef class Buddy4:
    cdef public object group, kept, pick
    cdef public tuple members

cpdef str _rule4(str group, bint remembered)
