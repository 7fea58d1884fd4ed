"""What the L7 exchange machine asks of the outside world: the `Port` its actions go to,
and the per-connection view of request fields that classification reads.

`protocol.L7Client` implements the Port over asyncio; the tests' fake port records
the calls.  Nothing here does I/O.
"""
from __future__ import annotations

from typing import Any, Protocol

from buddylb.core.decide import Decision, Flow
from buddylb.http.request import RequestHead
from buddylb.io.flow import Lease
from buddylb.io.record import FlowRecord


class Port(Protocol):
    """Every action the machine takes (see exchange.py's header for when)."""

    def now(self) -> float: ...
    def decide(self, flow: Flow) -> Decision | None: ...
    def take(self, address: str, port: int, tag: str | None = None) -> Any: ...
    def connect(self, lease: Lease) -> None: ...
    def give_back(self, conn: Any) -> None: ...
    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort_transport(self) -> None: ...
    def arm(self, deadline: float) -> None: ...
    def record(self, rec: FlowRecord) -> None: ...
    def tunnel(self, relay: Any) -> None: ...  # after a 101: client events go to `relay` (tunnel.py)


class RequestFields:
    """A lazy str view of the current request's fields, for classification (one per
    connection, pointed at each request's head: no allocation per request)."""

    __slots__ = ("head", "cookies")

    def __init__(self, cookies: bool) -> None:
        self.head: RequestHead | None = None
        self.cookies = cookies

    def get(self, name: str, default: str | None = None) -> str | None:
        assert self.head is not None
        key = name.encode("latin-1")
        v = self.head.cookies().get(key) if self.cookies else self.head.header(key)
        return default if v is None else v.decode("latin-1")
