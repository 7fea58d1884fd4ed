# Cython declarations for response.py (pure-Python mode); unused without Cython.  One
# ResponseParser is made per L7 request: as an extension type its creation is one
# allocation and `whole` (the usual read) reads its fields in C.
cimport cython

cdef class ResponseParser:
    cdef public bint must_close, complete
    cdef public Py_ssize_t _state, _informational
    cdef public object _method, _buf, _reader, _remaining, _chunked, _offered

    cpdef reset(self, bytes method, bytes offered=*)
    @cython.locals(end=Py_ssize_t, last=tuple)
    cpdef object whole(self, bytes data)
