"""The decision bracket's Redis commands, sent as one pipeline per event-loop pass.

Why: a burst of new clients (a node just started, a VIP just put in service) asks for
one GET and one insert-or-get per client at once.  Sent one by one, each takes a pooled
connection for a whole round trip; with the pool's 16 connections a burst of 50 queues
for connections, opens new ones under load, and overruns the store's timeout (`sticky-store
... timeout`, 200 ms in the tests): the node then turned degraded and decided locally,
and two nodes racing for the same clients split them (seen at load 4 on two cores).
Batched, the commands asked for in one loop pass take two round trips (the first at
once, the rest in one pipeline), however many clients came at once, and Redis parses one
pipeline instead of N requests.

The first command of a pass is sent at once, alone (a lone decision pays no loop hop
and no pipeline); the rest of that pass's commands follow in one pipeline at its end.
`Batch.get/insert/set` return a future (the caller bounds it with its own timeout, as
before: a caller that gave up leaves its future cancelled and its result is dropped).
The insert-or-get script goes as EVALSHA; a NOSCRIPT answer (Redis restarted, or a new
primary) loads the script and sends those inserts again, once.

A Redis Cluster spreads keys over nodes, so one pipeline would span slots: `Direct`
sends each command on its own (redis-py's cluster client routes it), with the same
interface.
"""
from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError


class Batch:
    """Commands of one loop pass in one pipeline (see the module doc)."""

    def __init__(self, client: Any, script: Any) -> None:
        self.client = client
        self.script = script  # the registered insert-or-get (redis-py Script: .sha, .script)
        self.queued: list[tuple[tuple, asyncio.Future]] = []
        self.scheduled = False
        self.running: set[asyncio.Task] = set()
        self.pipelines = 0  # pipelines sent (status and tests: how many round trips a burst took)

    def get(self, key: str) -> asyncio.Future:
        return self._add(("GET", key))

    def set(self, key: str, value: str, ttl_ms: int) -> asyncio.Future:
        return self._add(("SET", key, value, "PX", ttl_ms))

    def insert(self, key: str, value: str, ttl_ms: int) -> asyncio.Future:
        """Insert-or-get (store.record.INSERT_OR_GET): None when ours was stored, else the existing value."""
        return self._add(("EVALSHA", None, 1, key, value, ttl_ms))

    def _add(self, command: tuple) -> asyncio.Future:
        """The first command of a loop pass goes at once, alone (a lone decision waits for
        no loop hop); the ones asked for after it in the same pass go together at its end."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.scheduled:
            self.queued.append((command, fut))
        else:
            self.scheduled = True
            loop.call_soon(self._send)
            self._start([(command, fut)])
        return fut

    def _send(self) -> None:
        self.scheduled = False
        queued, self.queued = self.queued, []
        queued = [(c, f) for c, f in queued if not f.done()]  # given up on before it was sent
        if queued:
            self._start(queued)

    def _start(self, queued: list[tuple[tuple, asyncio.Future]]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(queued))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, queued: list[tuple[tuple, asyncio.Future]]) -> None:
        try:
            if len(queued) == 1:  # alone in its pass: a plain command (a pipeline costs ~30 us more)
                results = [await self._alone(queued[0][0])]
            else:
                results = await self._pipeline([c for c, _ in queued])
            retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if retry:  # Redis lost the script (restart, failover): load it, send those again
                self.script.sha = await self.client.script_load(self.script.script)
                again = await self._pipeline([queued[i][0] for i in retry])
                for i, r in zip(retry, again):
                    results[i] = r
        except BaseException as exc:  # the connection failed, or the store is stopping
            for _, fut in queued:
                if not fut.done():
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, fut), r in zip(queued, results):
            if fut.done():
                continue
            if isinstance(r, Exception):
                fut.set_exception(r)
            else:
                fut.set_result(r)

    async def _alone(self, c: tuple) -> Any:
        """One command, its error as its result (as a pipeline's with raise_on_error false)."""
        try:
            return await self.client.execute_command(*self._wire(c))
        except NoScriptError as exc:
            return exc

    async def _pipeline(self, commands: list[tuple]) -> list:
        self.pipelines += 1
        pipe = self.client.pipeline(transaction=False)
        for c in commands:
            pipe.execute_command(*self._wire(c))
        return await pipe.execute(raise_on_error=False)

    def _wire(self, c: tuple) -> tuple:
        """The command as sent: an insert names the script's current sha (it changes when
        a NOSCRIPT answer made us load it again)."""
        return ("EVALSHA", self.script.sha, *c[2:]) if c[0] == "EVALSHA" else c


class Direct:
    """The same interface, one command at a time (Redis Cluster: see the module doc)."""

    def __init__(self, client: Any, script: Any) -> None:
        self.client = client
        self.script = script
        self.pipelines = 0

    def get(self, key: str) -> Any:
        return self.client.get(key)

    def set(self, key: str, value: str, ttl_ms: int) -> Any:
        return self.client.set(key, value, px=ttl_ms)

    def insert(self, key: str, value: str, ttl_ms: int) -> Any:
        return self.script(keys=[key], args=[value, ttl_ms])
