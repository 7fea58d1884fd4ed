# Cython declarations for decision.py (pure-Python mode); unused without Cython.  Flow,
# Decision and Resolution are extension types with C fields; core.decide cimports them
# and the two builders, so the decision path writes their fields in C.
cimport cython
from buddylb.core.sticky cimport StickyTable

cdef class Flow:
    cdef public object source, destination, url, headers, cookies, xff, ssl_session
    cdef public double wall

cdef class Decision:
    cdef public object outcome, vip, class_name, farm, member, scope, entry, table
    cdef public object set_cookie, learn_cookie, tried, rule
    cdef public bint learn_session, queue
    cdef object _key
    cdef public unsigned long long klo
    cdef public int kform

cdef class Resolution:
    cdef public object outcome, member, candidates, rule

cpdef object fixed_key(unsigned long long lo, int form)
@cython.locals(r=Resolution)
cpdef Resolution _res(object outcome, object member, tuple candidates, object rule)
@cython.locals(d=Decision)
cpdef Decision _decision(str outcome, object vip, object class_name, object farm, object member, object scope,
                         object key, unsigned long long lo, int form, StickyTable table, object info, str rule)
