# Cython declarations for keys.py (pure-Python mode); unused without Cython.
cimport cython

cdef bint _COMPILED

@cython.locals(value="unsigned long long", part="unsigned long long", digits=Py_ssize_t, dots=Py_ssize_t,
               lead0=bint, ch=Py_UCS4)
cpdef object _v4(str address)
cpdef object _masked(str address, object prefix4, object prefix6)
cpdef object ip_key(object scope, str source, str destination)
@cython.locals(value="long long", part="long long", digits=Py_ssize_t, dots=Py_ssize_t, ch=Py_UCS4)
cpdef long long v4_value(str address) except? -2
