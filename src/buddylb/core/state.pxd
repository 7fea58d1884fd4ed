# Cython declarations for state.py (pure-Python mode); unused without Cython.  The cells
# and the state are extension types with C fields, so the decision path's availability
# check and connection count are C calls on C fields (issue 11); `core.decide` calls them
# in C when it holds a real RuntimeState, and through Python on a stand-in (core.impact).
cimport cython

cdef class RuntimeState

cdef class HostCell:
    cdef public long long conns
    cdef public bint admin_out

cdef class MemberCell:
    cdef public RuntimeState owner
    cdef public long long conns
    cdef public bint probe_down, limited
    cdef public HostCell host
    cdef public double ramp

cdef class RuntimeState:
    cdef public set draining
    cdef public dict cells, hosts, cursors, swrr
    cdef object __weakref__

    cpdef MemberCell cell(self, object m)
    cpdef HostCell host(self, object key)
    @cython.locals(c=MemberCell)
    cpdef bint available(self, object m) except -1
    @cython.locals(count="long long")
    cpdef bint _at_limit(self, object m, MemberCell c) except -1
    @cython.locals(c=MemberCell)
    cpdef bint only_limited(self, object m) except -1
    @cython.locals(c=MemberCell)
    cpdef opened(self, object m)
    @cython.locals(c=MemberCell)
    cpdef closed(self, object m)
