"""`buddylb run --workers N`: N processes sharing every VIP without losing stickiness.

Each worker has its own full data path and its own sticky database, so a client must
reach the *same* worker on every VIP (its HTTP and its HTTPS connection are decided by
one sticky table).  The master binds, for every VIP, one SO_REUSEPORT socket per worker
in worker order, and attaches one classic-BPF program to each group with
SO_ATTACH_REUSEPORT_CBPF.  The program hashes the packet's source address and returns
`hash % N`, the index of the socket in its group; since every group was built in the
same order, index i is worker i on every VIP.  Then the master forks the workers, each
keeping its own socket of each group, and relays SIGHUP / SIGTERM / SIGUSR1 to them.

Limits (documented in the README): a VIP added by a reload is bound by each worker on
its own (the kernel's default reuseport hash, no steering) until the next restart; each
worker serves its own admin API on the admin port + its index, and worker 0's (the admin
address itself) answers for the whole group (admin.fanout).  Under systemd the master
is the main PID: its workers notify it and it tells systemd READY / RELOADING / WATCHDOG
for all of them (service/relay.py), STOPPING=1 itself on SIGTERM.
"""
from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable

from buddylb.config.parser import load_config
from buddylb.core.compile import compile_config
from buddylb.core.snapshot import Vip
from buddylb.io.listeners import bind_vip
from buddylb.service.notify import Notifier
from buddylb.service.relay import WorkerRelay

log = logging.getLogger("buddylb.workers")

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>
SKF_NET_OFF = -0x100000  # <linux/filter.h>: offsets relative to the network header
_LD_W_ABS, _ALU_MUL_K, _ALU_RSH_K, _ALU_MOD_K, _RET_A = 0x20, 0x24, 0x74, 0x94, 0x16
_GOLDEN = 2654435761  # Knuth's multiplicative hash constant


def steering_program(workers: int, ipv6: bool) -> list[tuple[int, int, int, int]]:
    """cBPF: A = last 32 bits of the source address; A = (A * golden) >> 16; return A % N."""
    src_word = 20 if ipv6 else 12  # IPv6 header: source at 8..23; IPv4 header: source at 12..15
    return [
        (_LD_W_ABS, 0, 0, (SKF_NET_OFF + src_word) & 0xFFFFFFFF),
        (_ALU_MUL_K, 0, 0, _GOLDEN),
        (_ALU_RSH_K, 0, 0, 16),
        (_ALU_MOD_K, 0, 0, workers),
        (_RET_A, 0, 0, 0),
    ]


def worker_for(address: str, workers: int) -> int:
    """The worker the kernel program picks for a source address (same arithmetic)."""
    raw = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    word = int.from_bytes(raw[-4:], "big")
    return (((word * _GOLDEN) & 0xFFFFFFFF) >> 16) % workers


def attach_steering(sock: socket.socket, workers: int) -> None:
    prog = steering_program(workers, sock.family == socket.AF_INET6)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("@HP", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def bind_groups(vips: list[Vip], source: str, workers: int) -> list[dict[tuple[str, int], socket.socket]]:
    """One steered SO_REUSEPORT group per VIP; returns each worker's sockets."""
    per_worker: list[dict[tuple[str, int], socket.socket]] = [{} for _ in range(workers)]
    for vip in vips:
        group = [bind_vip(vip, source, reuse_port=True) for _ in range(workers)]
        attach_steering(group[0], workers)
        for i, s in enumerate(group):
            per_worker[i][(vip.address, vip.port)] = s
    return per_worker


def run_workers(opts, run: Callable[[Any], int]) -> int:
    """Bind, fork and supervise; each worker calls `run(child_options)` (app.run: this
    module never imports the assembly above it).  `opts` is app.RunOptions."""
    from buddylb.admin.security import split_addr
    from buddylb.io.runtime import load_secret

    opts.secret = load_secret(opts.secret_file)
    notifier = Notifier()  # the master is systemd's main PID: it speaks for its workers
    relay = WorkerRelay(notifier) if notifier.enabled else None
    snap = compile_config(load_config(opts.config))
    groups = bind_groups(list(snap.vips.values()), snap.source, opts.workers)
    host, port = split_addr(opts.admin)
    children: dict[int, int] = {}
    for i in range(opts.workers):
        pid = os.fork()
        if pid == 0:
            if relay is not None:
                relay.sock.close()
            for j, socks in enumerate(groups):
                if j != i:
                    for s in socks.values():
                        s.close()
            admin_host = f"[{host}]" if ":" in host else host
            peers = tuple(f"{admin_host}:{port + j}" for j in range(1, opts.workers)) if i == 0 else ()
            child = dataclasses.replace(opts, workers=1, admin=f"{admin_host}:{port + i}", prebound=groups[i],
                                        admin_peers=peers,
                                        worker_index=i, ready_file=_ready_path(opts.ready_file, i),
                                        notify_env=relay.child_env() if relay is not None else {})
            code = 1
            try:
                code = run(child)
            except BaseException as exc:  # report, then leave without running the master's code
                print(f"buddylb: worker {i}: {exc}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        children[pid] = i
        if relay is not None:
            relay.add(pid)
    for socks in groups:
        for s in socks.values():
            s.close()
    try:
        return _supervise(children, opts.ready_file, notifier, relay)
    finally:
        if relay is not None:
            relay.close()


def _ready_path(ready: Path | None, i: int) -> Path | None:
    return None if ready is None else ready.with_name(f"{ready.name}.{i}")


def _supervise(children: dict[int, int], ready: Path | None, notifier: Notifier, relay: WorkerRelay | None
               ) -> int:
    def forward(signum, _frame):
        if signum in (signal.SIGTERM, signal.SIGINT):
            notifier.stopping()
        elif signum == signal.SIGHUP and relay is not None:
            relay.reload_begins()
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, forward)
    worst = 0
    if ready is not None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(_ready_path(ready, i).exists() for i in children.values()):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:  # a worker died during start-up: stop the others and fail
                print(f"buddylb: worker {children.pop(pid)} failed to start "
                      f"(exit {os.waitstatus_to_exitcode(status)})", file=sys.stderr)
                forward(signal.SIGTERM, None)
                worst = 1
                break
            if relay is not None:
                relay.pump(0.05)
            else:
                time.sleep(0.05)
        else:
            ready.write_text(str(os.getpid()))
    while children:
        try:
            if relay is not None:  # READY / RELOADING / watchdog from the workers, as one
                relay.pump(0.2)
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    continue
                relay.remove(pid)
            else:
                pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        i = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            print(f"buddylb: worker {i} (pid {pid}) exited with {code}", file=sys.stderr)
            worst = worst or 1
    return worst
