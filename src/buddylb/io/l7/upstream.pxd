# Cython declarations for upstream.py and exchange.py (pure-Python mode); unused without
# Cython.  The exchange machine's state lives in C fields of this base class, so its
# per-request steps read and write them without attribute lookups (issue 10 item 5).
# An attribute the machine gains must be declared here too (compiled, an undeclared
# one raises AttributeError: `make test` runs compiled first and says so).
cimport cython
from buddylb.io.flow cimport Lease
from buddylb.io.record cimport FlowRecord

cdef class Upstream:
    cdef public object port, balancer, vip_key, snap, vip, parser, queue, phase, head, conn
    cdef public object rparser, headers, cookies, flow, now
    cdef public Lease lease  # typed: the request's steps read its fields and call it in C
    cdef public FlowRecord rec
    cdef public str peer, vip_name
    cdef public list pending
    cdef public tuple forwarded
    cdef public bint tls, paused, client_blocked, server_blocked, eof_seen, request_done
    cdef public bint response_started, chunked_out, close_after, retried, dispatched
    cdef public double deadline, armed, last_client, last_server
    cdef public Py_ssize_t requests, peer_port

    cpdef server_data(self, object data)
    cpdef server_eof(self)
    cpdef _relay(self, list events)
    cpdef bytes _response_head(self, object head)
    cpdef _response_done(self)
