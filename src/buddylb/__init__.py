"""buddylb: a software server load balancer whose headline feature is connection
persistence across server farms ("buddy sticky", SPEC §1)."""

__version__ = "0.1.0"

from buddylb import _pure  # noqa: E402  (BUDDYLB_PURE=1: the uncompiled modules, see setup.py)

_pure.install()
