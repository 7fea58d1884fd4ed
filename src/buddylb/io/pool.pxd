# Cython declarations for pool.py (pure-Python mode); unused without Cython.  The pooled
# server connection and the pool as extension types: take, write, the response's reads and
# give_back run as C on every L7 request.  Methods stay `def` (the exchange calls them as
# Python methods, and tests stand in for a ServerConn with a plain class).
cdef class ServerConn:
    cdef public object pool, target, transport, owner, preface
    cdef public double idle_since
    cdef public bint alive, reused, paused

cdef class Pool:
    cdef public dict idle
    cdef public object reaper
