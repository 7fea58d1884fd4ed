# Cython declarations for protocol.py (pure-Python mode); unused without Cython.  The L7
# client protocol as an extension type: its per-connection steps (construction,
# connection_made, the timer arm, the close) run as C, its fields are C slots.  Its methods
# stay `def`: io.h2.protocol.StreamPort (a Python subclass) replaces some of them.
cdef class L7Client:
    cdef public object balancer, vip_key, loop, now, transport, ex, write, slot, wheel, tasks, take
    cdef public object origin, give_back, record, pause_reading, resume_reading, data_received
    cdef public bint tls, closed


# The HTTP/1.1 client of a TLS VIP: reads through a shared buffer (get_buffer/buffer_updated)
cdef class TlsClient(L7Client):
    pass
