"""Optional compiled modules: the same .py sources built as C extensions by Cython (pure-Python
mode), when Cython and a C compiler are present.  Metadata lives in pyproject.toml.

`BUDDYLB_PURE=1` at build time skips the build; at run time it makes `import buddylb`
load the .py sources even where a compiled module sits beside them (`buddylb._pure`),
which is how the uncompiled fallback is tested.  `make` rebuilds when a listed source
changes (the Makefile reads its COMPILED list from the two lists here).  To compile another
module, add its path here; the module must run unchanged as plain Python.
"""
from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "src/buddylb/core/slots.py",  # the sticky table's flat storage (issue 11)
    "src/buddylb/core/counters.py",
    "src/buddylb/core/sticky.py",
    "src/buddylb/core/scope_table.py",
    "src/buddylb/core/sticky_scan.py",
    "src/buddylb/core/carry.py",  # a reload's entry copy (sticky.carry_over)
    "src/buddylb/core/avail.py",
    "src/buddylb/core/decision.py",  # Flow, Decision, Resolution: decide()'s values (decision.pxd)
    "src/buddylb/core/decide.py",
    "src/buddylb/core/prefetch.py",  # cache hints for decide()'s hit path
    "src/buddylb/core/keys.py",  # the decision path's helpers (issue 11: decide() at 1M clients)
    "src/buddylb/core/state.py",
    "src/buddylb/core/classify.py",
    "src/buddylb/core/statics.py",
    "src/buddylb/core/predictors/__init__.py",
    "src/buddylb/core/predictors/roundrobin.py",
    "src/buddylb/core/predictors/leastconns.py",
    "src/buddylb/core/predictors/hashing.py",
    # the L7 exchange machine: cdef classes declared in io/l7/upstream.pxd and exchange.pxd
    # (issue 10 item 5: its per-request steps read C fields and call each other in C)
    "src/buddylb/io/l7/upstream.py",
    "src/buddylb/io/l7/exchange.py",
    "src/buddylb/io/l7/protocol.py",  # the L7 client protocol: its per-connection set-up and close
    # the per-connection path (issue 10: a new connection per request, L4 and the L7 set-up)
    "src/buddylb/io/flow.py",
    "src/buddylb/io/l4.py",
    "src/buddylb/io/tcp.py",  # the L4 relay's own transports (one epoll below uvloop)
    "src/buddylb/io/accept.py",  # ... and the plain VIPs' accept into them (accept.pxd)
    "src/buddylb/io/wheel.py",
    "src/buddylb/io/record.py",
    "src/buddylb/io/tally.py",  # the decision counts (tally.pxd): one C call per decision
    "src/buddylb/io/admit.py",  # the VIPs' protocol factory: accept to protocol in C calls
    "src/buddylb/io/pool.py",  # the server connection's data_received, write, take, give_back: per request (pool.pxd)
]
# The HTTP head layer (issue 10 item 5; bench/http_parse.py measures the gain). Built with
# annotation typing: `head._scan_native` declares its C types as annotations.
COMPILED_HTTP = [
    "src/buddylb/http/head.py",
    "src/buddylb/http/framing.py",
    "src/buddylb/http/request.py",
    "src/buddylb/http/response.py",
]


def ext_modules() -> list:
    if os.environ.get("BUDDYLB_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # no Cython: the pure-Python modules serve, slower
        return []
    exts = cythonize(COMPILED, quiet=True, compiler_directives={
        "language_level": 3, "boundscheck": False, "wraparound": False, "binding": False,
        "annotation_typing": False, "infer_types": True,  # hints are documentation (`int` may be a big int)
    })
    exts += cythonize(COMPILED_HTTP, quiet=True, compiler_directives={"language_level": 3, "binding": False})
    for ext in exts:
        ext.optional = True  # no C compiler: a warning, and the pure-Python module serves
    return exts


setup(ext_modules=ext_modules())
