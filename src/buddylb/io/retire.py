"""Free a replaced Snapshot off the event loop (issue 13 item 6: a reload of a 20k-member
farm stalls no request over 50 ms).

Dropping the last reference to a 20k-member snapshot frees its whole tree in one C-level
cascade: 40-60 ms measured on the loop, the largest part of a reload's stall. A thread
cannot simply take the last reference instead, because a deallocation cascade never
releases the GIL. So the thread first walks the tree, holding a reference to every
container and every object of the snapshot and configuration models (the rest: strings,
numbers, short tuples, hang off those), and then lets go of them root first, one Python
statement each: each release frees one object and its leaves, and the interpreter can
hand the GIL back to the loop between any two of them (`sys.setswitchinterval`).

Releasing never mutates anything, so it is safe while others still use parts of the
tree: an object still referenced elsewhere (a Vip a flow holds) just lives on. The
retirer waits until nothing but its list holds the snapshot root (flows keep the snapshot
they started with), checking once a second.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import types
from typing import Iterator

CHECK_S = 1.0  # how often retired snapshots still held by flows are looked at again
SWITCH_INTERVAL_S = 0.001  # the GIL's slice while a worker thread competes with the loop
MODEL_MODULES = frozenset({"buddylb.core.snapshot", "buddylb.config.model"})
CONTAINERS = frozenset({dict, list, set, frozenset, types.MappingProxyType})
SHORT_TUPLE = 4  # tuples up to this length (keys, addresses) free with their holder

_sharing = [0, 0.0]  # threads competing now, the switch interval before the first


@contextlib.contextmanager
def share_cpu() -> Iterator[None]:
    """While a worker thread runs Python code beside the loop: give the GIL back every
    millisecond (the default 5 ms slice stalls the loop that long per switch). Counted,
    so overlapping workers (a compile and a free) restore the setting once, at the end."""
    if _sharing[0] == 0:
        _sharing[1] = sys.getswitchinterval()
        sys.setswitchinterval(min(_sharing[1], SWITCH_INTERVAL_S))
    _sharing[0] += 1
    try:
        yield
    finally:
        _sharing[0] -= 1
        if _sharing[0] == 0:
            sys.setswitchinterval(_sharing[1])


def _follows(t: type, cache: dict[type, bool]) -> bool:
    f = cache.get(t)
    if f is None:
        f = cache[t] = t in CONTAINERS or t.__module__ in MODEL_MODULES
    return f


def dismantle(box: list) -> int:
    """Free the one object in `box` in small steps; returns how many objects were held.

    Run in a worker thread; `box` holds the only reference the caller gave up."""
    order = [box.pop()]
    seen = {id(order[0])}
    cache: dict[type, bool] = {tuple: False}
    referents = gc.get_referents
    i = 0
    while i < len(order):
        for r in referents(order[i]):
            t = type(r)
            if (_follows(t, cache) or (t is tuple and len(r) > SHORT_TUPLE)) and id(r) not in seen:
                seen.add(id(r))
                order.append(r)
        i += 1
    held = len(order)
    seen.clear()
    order.reverse()
    while order:
        order.pop()  # root first: each frees one object (its followed children are still held)
    return held


class Retirer:
    """Snapshots replaced by a reload, freed in a worker thread once no flow holds them."""

    def __init__(self, check_s: float = CHECK_S) -> None:
        self.check_s = check_s
        self.retired: list = []
        self.freed = 0  # snapshots freed off the loop (tests read it)
        self._handle: asyncio.Handle | None = None

    def retire(self, old: object) -> None:
        """Take over `old` (the caller drops its reference); without a running loop (a
        tool, a test), the caller frees it as before."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.retired.append(old)
        if self._handle is None:
            self._handle = loop.call_soon(self._check)

    def _check(self) -> None:
        self._handle = None
        loop = asyncio.get_running_loop()
        for i in reversed(range(len(self.retired))):
            # 2: the list's reference and getrefcount's argument; nobody else holds it
            if sys.getrefcount(self.retired[i]) <= 2:
                box = [self.retired.pop(i)]  # no local name: the thread takes the last reference
                loop.create_task(self._free(box))
        if self.retired:
            self._handle = loop.call_later(self.check_s, self._check)

    async def _free(self, box: list) -> None:
        with share_cpu():
            await asyncio.get_running_loop().run_in_executor(None, dismantle, box)
        self.freed += 1

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
