# Cython declarations for l4.py (pure-Python mode); unused without Cython.  The two
# protocols of an L4 connection as extension types: their fields are C slots, so the
# per-connection and per-read steps read them without a dictionary or descriptor lookup.
# The decision, its lease and the flow are typed (issue 10, L4 new connection): their
# fields are read and their steps called in C from accept to close.
cimport cython
from buddylb.core.decision cimport Decision, Flow
from buddylb.io.flow cimport Lease
from buddylb.io.record cimport FlowRecord
from buddylb.io.wheel cimport Wheel

cdef class ServerSide

cdef class L4Client:
    cdef public object balancer, origin, vip_key, loop, transport, tasks, connector
    cdef public ServerSide server
    cdef public Decision decision
    cdef public Lease lease
    cdef public Flow flow
    cdef public object snap, vip, pending, hello, to_server, slot, status
    cdef public Wheel wheel
    cdef public str vip_name
    cdef public double started, quiet_since, idle
    cdef public Py_ssize_t pending_bytes, bytes_in, bytes_out, seen
    cdef public bint held_back, learn_session, closed, client_eof, server_eof, tls

    @cython.locals(rec=FlowRecord, d=Decision)
    cpdef _finish(self)

cdef class ServerSide:
    cdef public L4Client client
    cdef public object transport, hello, to_client
