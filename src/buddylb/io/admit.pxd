# Cython declarations for admit.py (pure-Python mode); unused without Cython.  The VIPs'
# protocol factory and a plain VIP's accept callback as extension types: an accepted
# connection reaches its protocol's constructor through C calls (issue 10, L4 new connection).
cdef class Maker:
    cdef public object balancer, l4, l7, alpn, gate
    cpdef relay(self, object key, bint tls, bint http, object origin)

cdef class Admit:
    cdef public object listeners, key
    cdef public bint tls
