"""`buddylb run`: assemble the process: Balancer, listeners, probes, admin API, signals.

This is the one module above `io/` and `admin/` (nothing imports it but the CLI): it
builds the pieces and hands each only what it needs.  The admin API sees the narrow
`admin.ops.Operations` interface (the Balancer and `reload`), never this Server; the
`--workers` master gets `run` as a callable, so `io.workers` never imports upward.

Start-up order (SPEC §4): load and compile the configuration, connect the sticky store,
serve the admin API, then open the VIPs.  SIGHUP reloads (bind new VIPs first; any error
keeps the old configuration serving); SIGTERM / SIGINT stop accepting, let open
connections finish for up to `timeout drain`, then exit 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

from buddylb import __version__
from buddylb.errors import CommandError, ConfigError, LbError
from buddylb.io.accesslog import AccessLog
from buddylb.io.admit import Maker
from buddylb.io.gate import AclGate
from buddylb.io.listeners import ListenerSet
from buddylb.io.proxied import ProxyGate
from buddylb.io.probes import Prober
from buddylb.io.udp import UdpListeners
from buddylb.io.runtime import Balancer, load_secret
from buddylb.store.cluster import DecisionRate, describe
from buddylb.service.notify import Notifier
from buddylb.service.privileges import drop, run_as

log = logging.getLogger("buddylb")
SWEEP_EVERY_S = 0.1


@dataclass
class RunOptions:
    config: Path
    admin: str = "127.0.0.1:9180"
    admin_token: str | None = None
    access_log: str = "-"
    access_log_format: str = "text"
    secret_file: Path | None = None
    sticky_store: str | None = None
    workers: int = 1
    reuse_port: bool = False
    ready_file: Path | None = None  # written once every VIP accepts (tests, supervisors)
    prebound: dict = field(default_factory=dict)  # (address, port) -> socket, from --workers
    worker_index: int = 0
    admin_peers: tuple[str, ...] = ()  # worker 0 of --workers: the others' admin addresses (one API)
    secret: bytes | None = None  # set by the --workers master so every worker signs alike
    notify_env: dict | None = None  # sd_notify settings; None: this process's environment (systemd's)
    user: str | None = None  # --user / --group: override the config's `user` / `group` lines
    group: str | None = None


def protocol_factory(balancer: Balancer) -> Maker:
    """The VIPs' protocol factory (io.admit.Maker, compiled): the relays, and the gates of
    a VIP with `accept-proxy` (SPEC §2.1: listed peers open with a PROXY header) or an
    access-group (SPEC §2.4), which then hand the connection to the relay."""
    from buddylb.io.l4 import L4Client
    from buddylb.io.h2.protocol import Alpn
    from buddylb.io.l7.protocol import L7Client

    def gated(vip, key: tuple[str, int], tls: bool) -> asyncio.Protocol:
        http = vip.policy.http
        if vip.accept_proxy:
            inner = lambda: ProxyGate(balancer, vip, lambda origin: maker.relay(key, tls, http, origin))  # noqa: E731
            return AclGate(balancer, vip, inner) if vip.acl is not None else inner()
        return AclGate(balancer, vip, lambda: maker.relay(key, tls, http, None))

    maker = Maker(balancer, L4Client, L7Client, Alpn, gated)
    return maker


class Server:
    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.balancer = Balancer(opts.config, opts.secret or load_secret(opts.secret_file))
        self.access_log = AccessLog(opts.access_log, opts.access_log_format)
        self.balancer.access_log = self.access_log
        self.listeners = ListenerSet(self.balancer, protocol_factory(self.balancer), opts.reuse_port,
                                     prebound=dict(opts.prebound))
        self.prober = Prober(self.balancer)
        self.rate = DecisionRate(self.balancer.tally)  # decisions/s in this node's heartbeat
        self.checksums: dict[int, str] = {}
        self.udp = UdpListeners(self.balancer, opts.reuse_port)
        self.stopping: asyncio.Event | None = None
        self.admin = None
        self.tasks: list[asyncio.Task] = []
        self.notifier = Notifier(opts.notify_env)  # systemd, or the --workers master (SPEC §4)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for w in self.balancer.warnings:
            log.warning("%s", w)
        who = run_as(self.balancer.config, self.opts.user, self.opts.group)  # looked up before binding
        await self._start_store()
        await self._start_admin()
        contexts = self.listeners.bind(self.balancer.snapshot)
        await self.listeners.apply(self.balancer.snapshot, contexts)
        await self.udp.apply(self.balancer.snapshot)  # UDP VIPs: bound before dropping privileges too
        self.prober.sync()
        if who is not None:  # every listener is bound: drop to `user` / `group` (SPEC §2.1)
            drop(who)
            log.info("running as user %s, group %s", who.user or os.getuid(), who.group)
        self.tasks.append(loop.create_task(self._sweeper()))
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self.access_log.reopen)  # logrotate
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        if self.opts.ready_file is not None:
            self.opts.ready_file.write_text(str(os.getpid()))
        log.info("buddylb %d (worker %d): %d VIP(s) in service", os.getpid(), self.opts.worker_index,
                 len(self.balancer.snapshot.vips))
        self.notifier.ready(f"{len(self.balancer.snapshot.vips)} VIP(s) in service")
        self.tasks.append(loop.create_task(self.notifier.watchdog_loop()))

    async def _start_store(self) -> None:
        """SPEC §4: connect the sticky store before the VIPs accept."""
        spec = self.balancer.config.sticky_store
        url = self.opts.sticky_store or (spec.url if spec else None)
        if not url:
            return
        from buddylb.store.redis import RedisStore

        try:
            store = RedisStore(url, prefix=spec.prefix if spec else "buddylb:",
                               timeout_s=spec.timeout_s if spec else 0.05)
            if spec is not None:
                store.writeback_rate = spec.writeback_rate
        except ValueError as exc:  # --sticky-store bypasses the config check: the same sentence here
            raise CommandError(str(exc), 2) from exc
        b = self.balancer
        store.attach(lambda: b.tables, b.clock, self.node_info)  # anti-entropy; heartbeat
        await store.start()
        self.balancer.store = store
        log.info("sticky-store %s (prefix %s)%s", url, store.prefix, " DEGRADED" if store.degraded else "")

    def node_info(self) -> dict:
        """This node as `show cluster` lists it (store.cluster)."""
        b, host = self.balancer, socket.gethostname()
        node_id = f"{host}:{self.opts.admin.rpartition(':')[2]}"
        entries = sum(t.size for t in b.tables.values())
        return describe(node_id, self.opts.admin, __version__, b.snapshot, entries, self.rate.rate(), self.checksums)

    async def _start_admin(self) -> None:
        from buddylb.admin.api import AdminServer

        self.admin = AdminServer(self, self.opts.admin, self.opts.admin_token, peers=self.opts.admin_peers)  # as admin.ops.Operations
        await self.admin.start()

    async def reload(self) -> tuple[bool, list[str]]:
        """systemd hears RELOADING=1 before and READY=1 after, whatever the outcome."""
        self.notifier.reloading()
        try:
            return await self._reload_now()
        finally:
            self.notifier.ready(f"configuration generation {self.balancer.snapshot.generation} in service")

    async def _reload_now(self) -> tuple[bool, list[str]]:
        """Validate, bind, swap (SPEC §5: a bad config never replaces a running one)."""
        b = self.balancer
        async with b.reload_lock:
            try:
                snap, config = await b.prepare_off_loop()  # compiled off the event loop
                contexts = self.listeners.bind(snap)
            except ConfigError as exc:
                msgs = [str(d) for d in exc.diagnostics if d.severity == "error"]
                for m in msgs:
                    log.error("reload refused, old configuration kept: %s", m)
                return False, msgs
            except (LbError, OSError) as exc:
                log.error("reload refused, old configuration kept: %s", exc)
                return False, [str(exc)]
            b.commit(snap, config)
            await self.listeners.apply(snap, contexts)
            for h2_client in list(b.h2_clients):  # HTTP/2: GOAWAY, open streams finish (README)
                h2_client.goaway()
            try:
                await self.udp.apply(snap)
            except LbError as exc:  # the TCP side is in service already; say what is missing
                log.error("reload: %s", exc)
            self.prober.sync()
            return True, [str(w) for w in config.warnings]

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            self.balancer.sweep(512)

    async def run_until_stopped(self) -> None:
        assert self.stopping is not None
        await self.stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        log.info("stopping: no new connections; draining %d open", len(self.balancer.flows))
        self.notifier.stopping(f"draining {len(self.balancer.flows)} connection(s)")
        self.listeners.stop_accepting()
        self.udp.close()
        for h2_client in list(self.balancer.h2_clients):  # HTTP/2: GOAWAY, open streams finish
            h2_client.goaway()
        deadline = asyncio.get_running_loop().time() + self.balancer.snapshot.timeouts["drain"]
        while self.balancer.flows and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for f in list(self.balancer.flows):
            f.abort()
        self.prober.stop()
        for t in self.tasks:
            t.cancel()
        await self.listeners.close()
        if self.admin is not None:
            await self.admin.stop()
        stop_store = getattr(self.balancer.store, "stop", None)
        if stop_store is not None:
            await stop_store()
        self.access_log.close()
        self.notifier.close()


def run(opts: RunOptions) -> int:
    import uvloop

    if opts.workers > 1:
        from buddylb.io.workers import run_workers

        return run_workers(opts, run)

    async def main() -> None:
        server = Server(opts)
        await server.start()
        await server.run_until_stopped()

    uvloop.run(main())
    return 0
