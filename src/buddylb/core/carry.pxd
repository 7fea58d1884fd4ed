# Cython declarations for carry.py (pure-Python mode); unused without Cython.
cimport cython
from buddylb.core.slots cimport Slots
from buddylb.core.scope_table cimport ScopeTable
from buddylb.core.sticky cimport StickyTable

@cython.locals(s=Slots, ns_=Slots, old_st=ScopeTable, new_st=ScopeTable, slot=Py_ssize_t, nxt=Py_ssize_t,
               ns=Py_ssize_t, members=list, where=list)
cpdef copy_entries(StickyTable old, StickyTable new)
