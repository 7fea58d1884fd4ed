# Cython declarations for counters.py (pure-Python mode); unused without Cython.
cdef class Counters:
    cdef public long long hits, misses, buddy_hits, resticks, evictions, expirations, unstored, no_server
    cdef public long long buddy_connections
