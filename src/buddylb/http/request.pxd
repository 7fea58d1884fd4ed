# Cython declarations for request.py (pure-Python mode); unused without Cython.  The
# client side's parser as an extension type: `whole` (the usual read) and the exchange's
# checks of `error` and `idle` after every response read C fields.
cimport cython

cdef class RequestParser:
    cdef public Py_ssize_t _state, _mark
    cdef public object _buf, _reader, _remaining, _chunked, _error

    cpdef object whole(self, bytes data)
