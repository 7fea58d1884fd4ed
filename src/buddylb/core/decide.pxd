# Cython declarations for decide.py (pure-Python mode); unused without Cython.  The table,
# its entry handles and scope tables are typed, so the decision path reaches their fields
# and methods in C rather than through attribute lookups (issue 11).
cimport cython
from buddylb.core.sticky cimport Entry, ScopeTable, StickyTable

cpdef object resolve(object ctx, object state, object scope, object farm, Entry entry)
cpdef tuple resolve_class(object ctx, object state, object scope, object farms, Entry entry)
@cython.locals(table=StickyTable, entry=Entry, st=ScopeTable)
cpdef object decide(object snap, object state, object tables, object vip, object flow, double now,
                    object secret=*, bint requeue=*)
cpdef _remember(object d, StickyTable table, object scope, object key, Entry entry, object farm, object member,
                double now)
cpdef _count(StickyTable table, str outcome)
