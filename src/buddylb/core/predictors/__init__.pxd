# Cython declarations for predictors/__init__.py (pure-Python mode); unused without Cython.
from buddylb.core.predictors.roundrobin cimport choose as _roundrobin

cpdef object choose(object farm, object candidates, object state, object addrs)
