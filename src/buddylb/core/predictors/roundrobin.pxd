# Cython declarations for roundrobin.py (pure-Python mode); unused without Cython.
cimport cython
from buddylb.core.state cimport RuntimeState

@cython.locals(rs=RuntimeState, swrr=dict, current=dict, total="long long", w="long long", best_w="long long",
               weight="long long", name=str, best_name=str)
cpdef object choose(object farm, object candidates, object state, object addrs)
