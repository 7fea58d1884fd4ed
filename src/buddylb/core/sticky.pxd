# Cython declarations for sticky.py (pure-Python mode): the same source, compiled with C
# types for the slot arithmetic.  Without Cython, or with BUDDYLB_PURE=1, this file is unused.
cimport cython
from buddylb.core.slots cimport Slots
from buddylb.core.counters cimport Counters
from buddylb.core.scope_table cimport ScopeTable

cdef class StickyTable
cdef double TICKS  # slots.TICKS, a C double here: stamps and deadlines in C arithmetic

cdef class Entry:
    cdef public StickyTable table
    cdef public ScopeTable st
    cdef public Py_ssize_t slot
    cdef public unsigned int gen
    @cython.locals(s=Slots)
    cpdef object rserver(self, Py_ssize_t fi)
    @cython.locals(t=StickyTable)
    cpdef Py_ssize_t last_farm(self)
    @cython.locals(t=StickyTable, s=Slots)
    cpdef Py_ssize_t member_index(self, Py_ssize_t fi)

cdef class StickyTable:
    cdef public str context
    cdef public Py_ssize_t max_entries, size, _sweep_pos
    cdef public Counters counters
    cdef public object retired
    cdef public dict scopes
    cdef public list _by_sid
    cdef public Slots s

    @cython.locals(whole="long long")
    cpdef long stamp(self, double now)
    @cython.locals(slot=Py_ssize_t)
    cpdef Py_ssize_t _find(self, ScopeTable st, object key) except -2
    @cython.locals(s=Slots, form=Py_ssize_t)
    cpdef object _key(self, ScopeTable st, Py_ssize_t slot)
    @cython.locals(s=Slots, slot=Py_ssize_t)
    cpdef Py_ssize_t _new(self, ScopeTable st, object key, Py_ssize_t fi, Py_ssize_t member, long stamp) except -1
    @cython.locals(s=Slots, slot=Py_ssize_t)
    cpdef Py_ssize_t _new_fixed(self, ScopeTable st, unsigned long long lo, unsigned long long hi, unsigned int form,
                                Py_ssize_t fi, Py_ssize_t member, long stamp) except -1
    @cython.locals(s=Slots)
    cdef Py_ssize_t _link_new(self, ScopeTable st, Py_ssize_t slot, Py_ssize_t fi, Py_ssize_t member,
                              long stamp) except -1
    @cython.locals(e=Entry)
    cdef Entry _handle(self, ScopeTable st, Py_ssize_t slot)
    cpdef object insert_fixed(self, ScopeTable st, unsigned long long lo, unsigned int form, Py_ssize_t farm_idx,
                              Py_ssize_t member, double now)
    @cython.locals(s=Slots, run=Py_ssize_t)
    cpdef Py_ssize_t _remove(self, ScopeTable st, Py_ssize_t slot) except -1
    @cython.locals(s=Slots)
    cpdef _link_tail(self, ScopeTable st, Py_ssize_t slot)
    @cython.locals(s=Slots, p=Py_ssize_t, n=Py_ssize_t)
    cpdef _unlink(self, ScopeTable st, Py_ssize_t slot)
    cpdef _to_tail(self, ScopeTable st, Py_ssize_t slot)
    @cython.locals(s=Slots)
    cpdef bint _expired(self, ScopeTable st, Py_ssize_t slot, double now)
    cpdef bint _mine(self, Entry e)
    @cython.locals(st=ScopeTable, slot=Py_ssize_t)
    cpdef object lookup(self, str scope, object key, double now)
    @cython.locals(slot=Py_ssize_t)
    cpdef object lookup_fixed(self, ScopeTable st, unsigned long long lo, unsigned int form, double now)
    @cython.locals(st=ScopeTable, slot=Py_ssize_t, member=Py_ssize_t)
    cpdef object insert(self, str scope, object key, Py_ssize_t farm_idx, object rserver, double now, bint known_absent=*)
    @cython.locals(st=ScopeTable, member=Py_ssize_t)
    cpdef record(self, str scope, object key, Entry e, Py_ssize_t farm_idx, object rserver, double now)
    @cython.locals(st=ScopeTable, slot=Py_ssize_t, s=Slots)
    cpdef touch(self, Entry e, Py_ssize_t farm_idx, Py_ssize_t member, double now)
    @cython.locals(st=ScopeTable, s=Slots, slot=Py_ssize_t, steps=Py_ssize_t, work=Py_ssize_t, limit=Py_ssize_t,
                   removed=Py_ssize_t, scopes=list)
    cpdef Py_ssize_t sweep(self, double now, Py_ssize_t budget=*) except -1
    cpdef opened(self, Entry e)
    @cython.locals(st=ScopeTable, slot=Py_ssize_t, s=Slots)
    cpdef closed(self, str scope, object key, Entry e, double now)
