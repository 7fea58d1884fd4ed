# Cython declarations for wheel.py (pure-Python mode); unused without Cython.  Every new
# connection arms and disarms the wheel (L4 twice: `timeout connect`, then inactivity):
# as an extension type with a C cursor and C arithmetic for the bucket key, arm and
# disarm are C calls from compiled callers (issue 10, L4 new connection).
cimport cython

cdef class Wheel:
    cdef public object loop, handle
    cdef public dict slots
    cdef public long long cursor

    @cython.locals(key="long long", rate=double, bucket=set)
    cpdef arm(self, object conn, double deadline)
    @cython.locals(bucket=set)
    cpdef disarm(self, object conn)
