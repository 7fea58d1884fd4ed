# Cython declarations for decide.py (pure-Python mode); unused without Cython.  Flow,
# Decision, Resolution and Plan are extension types with C fields; the table, its entry
# handles and scope tables are typed, so the decision path reaches their fields and
# methods in C rather than through attribute lookups (issue 11).
cimport cython
from buddylb.core.counters cimport Counters
from buddylb.core.keys cimport v4_value
from buddylb.core.avail cimport (Buddy4, Pick, _available, _buddies, _buddies_in, _opened, _pick_available,
                                 _pick_opened, _picks_in, _rule4, available_members, _available_picks)
from buddylb.core.predictors cimport choose
from buddylb.core.prefetch cimport lru_neighbours
from buddylb.core.scope_table cimport ScopeTable
from buddylb.core.sticky cimport Entry, StickyTable

cdef class Flow:
    cdef public object source, destination, url, headers, cookies, xff, ssl_session
    cdef public double wall

cdef class Decision:
    cdef public object outcome, vip, class_name, farm, member, scope, key, entry, table
    cdef public object set_cookie, learn_cookie, tried, rule
    cdef public bint learn_session, queue

cdef class Resolution:
    cdef public object outcome, member, candidates, rule

cdef class Plan:
    cdef public object seen, ctx, context, scope, scope_name, farms, farm0, cls_name
    cdef public StickyTable table
    cdef public ScopeTable st
    cdef public Py_ssize_t fi0, ipmode
    cdef public unsigned long long mask4
    cdef public bint statics, buddy
    cdef public list hit0
    cdef public tuple prim0
    cdef public object b4
    cdef public dict idx0

@cython.locals(r=Resolution)
cdef Resolution _res(object outcome, object member, tuple candidates, object rule)
@cython.locals(d=Decision)
cpdef Decision _decision(str outcome, object vip, object class_name, object farm, object member, object scope,
                         object key, StickyTable table, object info, str rule)

@cython.locals(fi=Py_ssize_t, last=Py_ssize_t, buddies=list)
cpdef Resolution resolve(object ctx, object state, object scope, object farm, Entry entry)
@cython.locals(res=Resolution)
cpdef tuple resolve_class(object ctx, object state, object scope, object farms, Entry entry)
@cython.locals(table=StickyTable, entry=Entry, p=Plan, res=Resolution, d=Decision, src="long long",
               dst="long long", lo="unsigned long long", fi=Py_ssize_t, mi=Py_ssize_t, c=Counters, candidates=tuple,
               form=cython.int, last=Py_ssize_t, row=list, b=Buddy4, buddies=list, pk=Pick, q=Pick, picks=list,
               remembered=Py_ssize_t)
cpdef Decision decide(object snap, object state, object tables, object vip, Flow flow, double now,
                      object secret=*, bint requeue=*)
cdef Decision _stuck(Decision d, Plan p, object state, StickyTable table, Entry entry, object member,
                    Py_ssize_t mi, Pick pk, double now)
cpdef _remember(Decision d, StickyTable table, object scope, object key, Entry entry, Py_ssize_t fi,
                object member, double now)
@cython.locals(c=Counters)
cpdef _count(StickyTable table, str outcome)
