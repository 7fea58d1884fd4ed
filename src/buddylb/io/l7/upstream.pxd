# Cython declarations for upstream.py and exchange.py (pure-Python mode); unused without
# Cython.  The exchange machine's state lives in C fields of this base class, so its
# per-request steps read and write them without attribute lookups (issue 10 item 5).
# An attribute the machine gains must be declared here too (compiled, an undeclared
# one raises AttributeError: `make test` runs compiled first and says so).
cimport cython
from buddylb.io.flow cimport Lease
from buddylb.io.record cimport FlowRecord
# the parsers under C names (the .py files import the Python names): typed fields, so
# `whole` and the checks of their state are C calls and C reads
from buddylb.http.request cimport RequestParser as CRequestParser
from buddylb.http.response cimport ResponseParser as CResponseParser
from buddylb.core.decision cimport Decision as CDecision, Flow as CFlow

cdef class Upstream:
    cdef public object port, balancer, vip_key, snap, vip, queue, phase, head, conn
    cdef public object headers, cookies, now
    cdef public CFlow flow
    # the request head's values each request reads (Exchange._know: once per head object)
    cdef public object known
    cdef public bytes h_method, h_path, h_upgrade
    cdef public str h_url
    cdef public Py_ssize_t h_size
    cdef public bint h_bodiless, h_keep, h_v11
    cdef public CRequestParser parser
    cdef public CResponseParser rparser, spare
    # the snapshot's values each request reads (_settings)
    cdef public double t_head, t_idle, t_exchange
    cdef public object trusted, inserts
    cdef public bint underscores
    cdef public Lease lease  # typed: the request's steps read its fields and call it in C
    cdef public FlowRecord rec
    cdef public str peer, vip_name
    cdef public list pending
    cdef public tuple forwarded
    cdef public bint tls, paused, client_blocked, server_blocked, eof_seen, request_done
    cdef public bint response_started, chunked_out, close_after, retried, dispatched
    cdef public double deadline, armed, last_client, last_server
    cdef public Py_ssize_t requests, peer_port

    cpdef _finish(self, object status)
    @cython.locals(due=double)
    cpdef _enter(self, object phase, double seconds, double now=*)
    cpdef _arm(self, double due)
    cpdef bint _follow_reload(self)
    cpdef _settings(self)
    cpdef _know(self, object head)
    @cython.locals(now=double)
    cpdef server_data(self, object data)
    cpdef server_eof(self)
    cpdef _relay(self, list events, double now)
    @cython.locals(d=CDecision)
    cpdef bytes _response_head(self, object head)
    cpdef _response_done(self, double now)
