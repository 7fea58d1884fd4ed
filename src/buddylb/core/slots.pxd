cimport cython

cdef unsigned long long M64, _M32, _K1, _K2, _T48
cdef Py_ssize_t FARMS_AT
cdef unsigned int _V6

cdef class Slots:
    cdef public Py_ssize_t capacity, width, stride, mask, high, free
    cdef public unsigned int slot_mask, fp_mask
    cdef public unsigned long long[:] lo, hi
    cdef public unsigned short[:] tag
    cdef public unsigned int[:] prev, nxt, stamp, open, gen, index
    cdef public unsigned char[:] last, farms

    @cython.locals(h="unsigned long long")
    cpdef unsigned long long hash_key(self, unsigned long long lo, unsigned long long hi, unsigned int tag)
    cpdef Py_ssize_t home(self, unsigned long long lo, unsigned long long hi, unsigned int tag)
    @cython.locals(i=Py_ssize_t, s=Py_ssize_t, mask=Py_ssize_t, index="unsigned int[:]", h="unsigned long long",
                   v="unsigned int", fp="unsigned int", fp_mask="unsigned int")
    cpdef Py_ssize_t find(self, unsigned long long lo, unsigned long long hi, unsigned int tag)
    @cython.locals(tag="unsigned int")
    cdef inline unsigned long long _hash_of(self, Py_ssize_t slot)
    @cython.locals(i=Py_ssize_t, mask=Py_ssize_t, index="unsigned int[:]", h="unsigned long long")
    cpdef place(self, Py_ssize_t slot)
    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, s=Py_ssize_t, k=Py_ssize_t, mask=Py_ssize_t, run=Py_ssize_t,
                   index="unsigned int[:]", slot_mask="unsigned int")
    cpdef Py_ssize_t unplace(self, Py_ssize_t slot)
    @cython.locals(s=Py_ssize_t, base=Py_ssize_t, f=Py_ssize_t)
    cpdef Py_ssize_t take(self)
    cpdef release(self, Py_ssize_t slot)
