# Cython declarations for l4.py (pure-Python mode); unused without Cython.  The two
# protocols of an L4 connection as extension types: their fields are C slots, so the
# per-connection and per-read steps read them without a dictionary or descriptor lookup.
cdef class L4Client:
    cdef public object balancer, origin, vip_key, loop, transport, server, decision, lease, tasks
    cdef public object snap, vip, pending, hello, flow, to_server, slot, wheel, status
    cdef public object started, quiet_since, idle, pending_bytes, bytes_in, bytes_out, seen
    cdef public bint held_back, learn_session, closed, client_eof, server_eof, tls

cdef class ServerSide:
    cdef public L4Client client
    cdef public object transport, hello, to_client
