# Cython declarations for sticky_scan.py (pure-Python mode); unused without Cython.
cimport cython
from buddylb.core.slots cimport Slots
from buddylb.core.scope_table cimport ScopeTable
from buddylb.core.sticky cimport Entry, StickyTable

@cython.locals(s=Slots, stride=Py_ssize_t, slot=Py_ssize_t, end=Py_ssize_t, stop=Py_ssize_t, tag=Py_ssize_t,
               sid=Py_ssize_t, nsids=Py_ssize_t, fi=Py_ssize_t, m=Py_ssize_t, have=Py_ssize_t, ok=bint,
               allowed=list, pairs=list, st=ScopeTable, want="long long", src="long long", form=Py_ssize_t,
               shift=Py_ssize_t, shifts=list)
cpdef tuple scan(StickyTable table, Py_ssize_t cursor, Py_ssize_t limit, double now, object sids=*,
                 object members=*, object match=*, object budget=*, object prefix4=*)
