"""`buddylb demo`: the embedded shopping-cart and tiers examples, end to end, on loopback.

Modules: `config` (the two embedded configurations), `certs` (a throwaway certificate),
`net` (addresses, free ports, one client request), `backends` (servers that answer with
their name), `balancer` (`buddylb run` as a child process), `scenario` (the traffic and
its reading back from the access log), `report` (what is printed), `runner` (the order
of things and the cleanup).  Nothing here is used by `buddylb run`.
"""
from __future__ import annotations

from buddylb.demo.runner import run_demo

__all__ = ["run_demo"]
