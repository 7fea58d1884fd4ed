# Cython declarations for prefetch.py (pure-Python mode); unused without Cython.
cimport cython
from buddylb.core.slots cimport Slots

cdef bint _COMPILED

cdef extern from *:
    void __builtin_prefetch(const void *addr, int rw, int locality) nogil

@cython.locals(p="unsigned int", n="unsigned int")
cpdef void lru_neighbours(Slots s, Py_ssize_t slot) noexcept
