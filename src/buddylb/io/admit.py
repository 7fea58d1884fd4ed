"""Which protocol serves a connection accepted now: the VIPs' protocol factory, compiled.

Why (issue 10, L4 new connection per request): the factory runs once per accepted
connection.  As Python functions (ListenerSet._accepted, then the app's `make`, then
`relay`) it cost ~1.2 us of interpreter time per connection, about as much as setting up
the L4Client itself.  Compiled (setup.py, admit.pxd), accept to protocol is C calls.

- `Maker(balancer, l4, l7, alpn, gate)`: `maker(key, tls)` reads VIP `key` from the
  current snapshot (a reload applies to the next connection) and builds its protocol:
  `gate(vip, key, tls)` when the VIP has `accept-proxy` (SPEC §2.1) or an access-group
  (SPEC §2.4) (the app assembles those gates), otherwise the relay: `alpn` for an HTTP
  VIP over TLS, `l7` for HTTP, `l4` for the rest.  The classes come from the app, so this
  module imports no protocol.
- `Admit(listeners, key, tls)`: the callback a plain VIP's io.tcp Server calls per
  accepted connection.  Below half of `maxconn` open connections it asks the factory
  directly; otherwise `ListenerSet._accepted` checks the budget (pause accept, refuse
  beyond the overshoot) exactly as for every other Server.
"""
from __future__ import annotations

from typing import Any, Callable


class Maker:
    __slots__ = ("balancer", "l4", "l7", "alpn", "gate")

    def __init__(self, balancer: Any, l4: Callable[..., Any], l7: Callable[..., Any], alpn: Callable[..., Any],
                 gate: Callable[[Any, tuple[str, int], bool], Any]) -> None:
        self.balancer = balancer
        self.l4, self.l7, self.alpn, self.gate = l4, l7, alpn, gate

    def __call__(self, key: tuple[str, int], tls: bool) -> Any:
        vip = self.balancer.snapshot.vips.get(key)
        if vip is None:
            return self.l4(self.balancer, key, tls, None)  # closes at once: the VIP is gone
        if vip.accept_proxy or vip.acl is not None:
            return self.gate(vip, key, tls)
        return self.relay(key, tls, vip.policy.http, None)

    def relay(self, key: tuple[str, int], tls: bool, http: bool, origin: Any) -> Any:
        """The protocol that relays the connection (`origin`: what a PROXY header said)."""
        if not http:
            return self.l4(self.balancer, key, tls, origin)
        if tls:
            return self.alpn(self.balancer, key, origin)  # HTTP/2 or HTTP/1.1, as the client chose by ALPN
        return self.l7(self.balancer, key, tls, origin)


class Admit:
    __slots__ = ("listeners", "key", "tls")

    def __init__(self, listeners: Any, key: tuple[str, int], tls: bool) -> None:  # an io.listeners.ListenerSet
        self.listeners = listeners
        self.key = key
        self.tls = tls

    def __call__(self) -> Any:
        ls = self.listeners
        budget = ls.budget
        if budget is None or len(ls.balancer.flows) * 2 < budget.maxconn:
            return ls.factory(self.key, self.tls)
        return ls._accepted(self.key, self.tls)
