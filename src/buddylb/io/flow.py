"""One flow for every data path (L4, L7, UDP): decide, queue, connect with one retry, lease.

Owns the steps between "a connection or request arrived" and "a server connection is
ready", and the `Lease` that says a decision is in use.  It must never parse a protocol
or write client bytes: the caller (an L4 relay, the L7 exchange, the UDP relay) does.

Theory of operation (SPEC §3, §5)
- `decide_now` decides without awaiting whenever it can: always with the memory store,
  and with a shared store when the local copy is current and the decision changes
  nothing (core.store).  Otherwise the caller starts ONE task for `settle`, which loads
  and/or publishes through the store, and waits in the rule-6 queue if needed.
- The queue: a decision that found every rserver only at its connection limit waits up
  to `timeout queue` on a future that `Balancer.closed` (any release in the context)
  resolves; then it decides again.  No polling: an idle queue costs nothing.
- `Connector` opens the server connection with `timeout connect`; a refused or timed-out
  connect is retried once on another available rserver of the farm (`reroute`), then
  reports failure (L7 answers 502, L4 closes).  Callbacks, not a coroutine: the
  new-connection path pays no Task, no future and no asyncio.timeout (io.tcp's connect
  calls the Connector back, for L4 and for L7's pool alike).
- A `Lease` holds the decision in use.  `release()` gives the rserver slot and the
  sticky entry's open count back and wakes the queue; it runs at most once, whoever
  calls it first (the response end, the client leaving, a purge, a failed connect).
  `track(holder)` registers the holder for `fail-action purge` (SPEC §2.1): a failed
  probe calls `holder.abort()`; release untracks.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from buddylb.core.decide import Decision, Flow, connection_closed, reroute
from buddylb.core.snapshot import Snapshot, Vip
from buddylb.io.lograte import note_connect_failure
from buddylb.io.tally import counted_decide
from buddylb.io.wheel import shared_wheel

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

log = logging.getLogger("buddylb.flow")


class Lease:
    """A decision in use; released exactly once."""

    __slots__ = ("balancer", "decision", "holder", "released")

    def __init__(self, balancer: "Balancer", decision: Decision) -> None:
        self.balancer = balancer
        self.decision = decision
        self.holder: Any = None
        self.released = decision.member is None  # nothing to give back

    def track(self, holder: Any) -> None:
        """Register `holder` (it has `abort()`) for `fail-action purge` of this rserver."""
        d = self.decision
        if not self.released and d.farm is not None and d.farm.fail_action_purge:
            self.holder = holder
            self.balancer.track(d, holder)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        d = self.decision
        b = self.balancer
        if self.holder is not None:
            b.untrack(d, self.holder)
            self.holder = None
        if b.queued or b.store.shared:
            b.closed(d)
        else:  # Balancer.closed with nothing queued and the memory store: no Python call
            connection_closed(b.state, d, b.clock())

    def _given_back(self) -> None:
        """`reroute` found no other rserver and already gave the slot and entry back."""
        self.released = True
        if self.holder is not None:
            self.balancer.untrack(self.decision, self.holder)
            self.holder = None
        self.balancer.wake(self.decision.vip.context)


def client_opened(b: "Balancer", conn: Any, vip_key: tuple[str, int]) -> None:
    """A client connection of VIP `vip_key` is open (L4 and L7 alike): `b.flows` holds it
    for drain and stop; a VIP with a `conn-limit` counts it (io/listeners.py)."""
    b.flows.add(conn)
    accept = b.accept
    if accept.limits:
        accept.opened(vip_key)


def client_closed(b: "Balancer", conn: Any, vip_key: tuple[str, int], wheel: Any) -> None:
    """The close bookkeeping shared by L4 and L7 (review note D8): drop the flow, free the
    VIP's accept slot (only while accept is paused or a conn-limit applies: a paused accept
    resumes on this event), take the connection's deadline off the timer wheel."""
    b.flows.discard(conn)
    accept = b.accept
    if accept.watch_close:
        accept.released(vip_key)
    if conn.slot is not None:
        wheel.disarm(conn)


def decide_now(b: "Balancer", vip: Vip, flow: Flow, snap: Snapshot) -> tuple[Decision | None, bool]:
    """(decision, final).  `final` False: finish with `await settle(...)` in a task
    (the shared store must load or publish, or the rule-6 queue must be waited in)."""
    if not b.store.shared:
        d = counted_decide(b, vip, flow, snap)
        return d, not d.queue
    d, must_publish = b.decide_now(vip, flow, snap)
    if d is None or must_publish:
        return d, False
    return d, not d.queue


async def settle(b: "Balancer", vip: Vip, flow: Flow, snap: Snapshot, made: Decision | None) -> Decision:
    """Finish what `decide_now` could not: store round trips, then the queue."""
    d = made
    if b.store.shared and (d is None or not b.store.settle(d)):
        d = await _store_step(b, b.decide_shared(vip, flow, snap) if d is None else b.publish(d, vip, flow, snap))
    assert d is not None
    if d.member is None and d.queue:
        d = await queue(b, vip, flow, snap, d)
    return d


async def _store_step(b: "Balancer", step: Awaitable[Decision]) -> Decision:
    """Await a store round trip that ends holding a decision.  If the flow's task is
    cancelled meanwhile (the client left), the step still finishes and its decision is
    released: a cancelled await must never leak an rserver slot or an open entry."""
    inner = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.add_done_callback(lambda t: _release_orphan(b, t))
        raise


def _release_orphan(b: "Balancer", task: "asyncio.Future[Decision]") -> None:
    if not task.cancelled() and task.exception() is None:
        Lease(b, task.result()).release()


async def queue(b: "Balancer", vip: Vip, flow: Flow, snap: Snapshot, d: Decision) -> Decision:
    """SPEC §3 rule 6: every rserver is only at its limit: wait up to `timeout queue`,
    woken by releases, deciding again each time.  Returns a decision (member None:
    the wait ended without a server)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + snap.timeouts["queue"]
    context = vip.context
    while d.member is None and d.queue:
        waiter = b.waiter(context)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            return d
        finally:
            b.unwait(context, waiter)
        d = counted_decide(b, vip, flow, snap, True)
    return d


class Connector:
    """Opens the server connection of `lease` (its decision may change: one retry on
    another rserver, SPEC §5), then calls `done(lease, result)`, or `done(lease, None)`
    once both tries failed (the lease is then released).  `cancel()` (the client left) stops it
    and calls nothing.

    `open_conn(address, port, answer)` starts the connect and returns a handle at once;
    `answer(made, None)` or `answer(None, exc)` comes later (never from inside the
    call), and `handle.abort()` cancels it, with no answer then: io.tcp.connect for L4,
    io.pool.Pool.dial for L7 (no coroutine, no future, no loop hop; issue 10).  A
    refused or failed connect is an OSError (raised at once when nothing was opened, or
    as `exc`): retried once.  The `timeout connect` deadline rides the shared timer wheel
    (wheel.py: at most STEP late, never early)."""

    __slots__ = ("b", "lease", "flow", "timeout", "open_conn", "done", "wheel", "slot",
                 "attempt", "owner", "handle")

    def __init__(self, b: "Balancer", lease: Lease, flow: Flow, timeout: float,
                 open_conn: Callable[..., Any], done: Callable[[Lease, Any], None],
                 owner: set | None = None) -> None:
        self.b, self.lease, self.flow, self.timeout = b, lease, flow, timeout
        self.open_conn, self.done = open_conn, done
        wheel = b.wheel  # not get_running_loop() per connect: it costs a getpid() syscall
        self.wheel = wheel if wheel is not None and not wheel.loop.is_closed() else \
            shared_wheel(b, asyncio.get_running_loop())
        self.handle: Any = None  # the connect in progress: abort() cancels it
        self.slot: int | None = None  # our bucket in the wheel, while armed
        self.attempt = 0
        self.owner = owner  # the caller's set of things to cancel when its client leaves
        if owner is not None:
            owner.add(self)
        self._try()

    def _try(self) -> None:
        d = self.lease.decision
        wheel = self.wheel
        try:
            self.handle = self.open_conn(d.address, d.port, self._made)
        except OSError as exc:  # nothing opened (no descriptor, unreachable): answer later, as a connect would
            wheel.loop.call_soon(self._answer, None, exc)
            return
        wheel.arm(self, wheel.loop.time() + self.timeout)

    def _made(self, made: Any, exc: BaseException | None) -> None:
        """The connect's answer."""
        if self.handle is None:  # cancelled or timed out meanwhile (not expected: abort() silences it)
            return
        self.handle = None
        self.wheel.disarm(self)
        self._answer(made, exc)

    def fire(self) -> None:  # the wheel: `timeout connect` passed
        if self._stop() is not None:
            self._answer(None, TimeoutError())

    def cancel(self) -> None:
        """The client left: stop connecting; `done` is not called (the caller's
        connection_lost releases the lease).  The owner's set is left as it is: the
        owner calls this while iterating that set, and it is going away anyway."""
        self.owner = None
        self.wheel.disarm(self)
        self._stop()

    def _stop(self) -> Any:
        """Cancel the connect in progress (None: none was): its handle is aborted (its
        socket closed, no answer)."""
        handle = self.handle
        if handle is not None:
            self.handle = None
            handle.abort()
        return handle

    def _forget(self) -> None:
        if self.owner is not None:
            self.owner.discard(self)
            self.owner = None

    def _answer(self, made: Any, exc: BaseException | None) -> None:
        """The connect ended: report `made`, or retry once / fail after `exc`."""
        if exc is None:
            self._forget()
            self.done(self.lease, made)
            return
        lease, b = self.lease, self.b
        d = lease.decision
        note_connect_failure(d.address, d.port, exc)  # rate-limited, with counts
        b.inband_failed(d)  # ACE inband-health check (core.inband)
        nd = None
        if not lease.released:  # released: the client left meanwhile, nothing to retry for
            nd = reroute(b.state, d, b.clock(), self.flow) if self.attempt == 0 else None
            if nd is None:
                if self.attempt == 0:
                    lease._given_back()
                else:
                    lease.release()
        if nd is None:
            self._forget()
            self.done(self.lease, None)
            return
        lease.decision = nd
        self.attempt += 1
        b.wake(d.vip.context)  # the failed rserver's slot is free again
        self._try()
