"""What the admin API may operate on: the narrow interface the process hands it.

The admin API reads the Balancer (snapshot, state, sticky tables, store status, probe
targets), the prober's result history, and asks for reloads; it never sees listeners, probes or the assembly that
owns them (`buddylb.app`, which implements this Protocol).  Keeping it this small is
what keeps `admin` below the wiring module: no import from admin reaches `app`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from buddylb.io.probes import Prober
    from buddylb.io.runtime import Balancer


class Operations(Protocol):
    """The process as the admin API sees it."""

    balancer: "Balancer"
    prober: "Prober"  # read only: each probe target's recent results (`show probe`)

    async def reload(self) -> tuple[bool, list[str]]:
        """Validate and swap in the configuration file; (ok, messages)."""
        ...
