# Cython declarations for decide.py (pure-Python mode); unused without Cython.  Plan and
# (core.decision) Flow, Decision, Resolution are extension types with C fields; the table, its entry
# handles and scope tables are typed, so the decision path reaches their fields and
# methods in C rather than through attribute lookups (issue 11).
cimport cython
from buddylb.core.counters cimport Counters
# the value types under C names: decide.py imports (and re-exports) the Python names
from buddylb.core.decision cimport Decision as CDecision, Flow as CFlow, Resolution as CResolution, _decision, _res
from buddylb.core.keys cimport v4_value
from buddylb.core.avail cimport (Buddy4, Pick, _available, _buddies, _opened, _pick_available,
                                 _pick_opened, _picks_in, _rule4, available_members, _available_picks)
from buddylb.core.predictors cimport choose
from buddylb.core.prefetch cimport lru_neighbours
from buddylb.core.scope_table cimport ScopeTable
from buddylb.core.sticky cimport Entry, StickyTable
from buddylb.core.state cimport RuntimeState

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


@cython.locals(fi=Py_ssize_t, last=Py_ssize_t, buddies=list)
cpdef CResolution resolve(object ctx, object state, object scope, object farm, Entry entry)
@cython.locals(res=CResolution)
cpdef tuple resolve_class(object ctx, object state, object scope, object farms, Entry entry)
@cython.locals(table=StickyTable, entry=Entry, p=Plan, res=CResolution, d=CDecision, src="long long",
               dst="long long", lo="unsigned long long", fi=Py_ssize_t, mi=Py_ssize_t, c=Counters, candidates=tuple,
               form=cython.int, last=Py_ssize_t, row=list, b=Buddy4, buddies=list, pk=Pick, q=Pick, picks=list,
               remembered=Py_ssize_t)
cpdef CDecision decide(object snap, object state, object tables, object vip, CFlow flow, double now,
                      object secret=*, bint requeue=*)
cdef CDecision _stuck(CDecision d, Plan p, object state, StickyTable table, Entry entry, object member,
                    Py_ssize_t mi, Pick pk, double now)
cpdef _remember(CDecision d, StickyTable table, object scope, object key, Entry entry, Py_ssize_t fi,
                object member, double now)
@cython.locals(c=Counters)
cpdef _count(StickyTable table, str outcome)
@cython.locals(rs=RuntimeState, entry=Entry, table=StickyTable)
cpdef connection_closed(object state, CDecision d, double now)
