# Cython declarations for scope_table.py (pure-Python mode); unused without Cython.
cdef class ScopeTable:
    cdef public object scope
    cdef public Py_ssize_t sid, nfarms, head, tail, count
    cdef public double timeout, ticks
    cdef public bint activeconns
    cdef public list names, index_of
    cdef public dict other, other_keys
    cpdef unsigned int tag(self, unsigned int form)
