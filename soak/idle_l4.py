"""Many idle L4 connections through one buddylb instance, and what each one costs.

The clients live in this process, the backend in a child process
(`python -m soak.idle_l4 backend HOST PORT READY`: greets each connection with its name,
then echoes), buddylb in another, so no process needs more than one descriptor per
connection end it owns.  Every connection must be greeted by the backend through
buddylb (served) and a sample must still echo once all are open.  buddylb's VmRSS is
read before and after: the difference divided by the connection count is the cost of
one idle relayed connection (two sockets, two protocol objects, one decision).

File descriptors: buddylb holds two per connection.  Children inherit this process's
RLIMIT_NOFILE, so the soft limit is raised to the hard limit first.  When even the hard
limit cannot hold 2 x N (a container without CAP_SYS_RESOURCE cannot raise it),
buddylb runs with `--workers 2`, each worker holding its share, and the figure sums the
processes.
"""
from __future__ import annotations

import asyncio
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.support.balancer import BalancerProcess
from tests.support.net import free_port, wait_for
from tests.support.procs import stop

VIP = "127.0.0.100"
BACKEND = "127.0.1.11"
SLACK_FDS = 300  # listeners, admin, logs, the interpreter's own


@dataclass
class IdleRun:
    connections: int
    served: int
    echo_sample: int
    echo_ok: int
    workers: int
    nofile_hard: int
    rss_before: int
    rss_after: int
    seconds_to_open: float

    @property
    def bytes_per_connection(self) -> float:
        return (self.rss_after - self.rss_before) / max(1, self.connections)

    @property
    def ok(self) -> bool:
        return self.served == self.connections and self.echo_ok == self.echo_sample

    def as_dict(self) -> dict:
        return asdict(self) | {"bytes_per_connection": round(self.bytes_per_connection), "ok": self.ok}


def raise_nofile(need: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; returns the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit {hard} < {need} needed")
    return hard


def rss_of(pid: int, with_children: bool = True) -> int:
    """VmRSS of `pid` (and of its direct children: --workers) in bytes."""
    pids = [pid]
    if with_children:
        try:
            pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def config(vip_port: int, backend_port: int) -> str:
    text = "timeout client 600\ntimeout server 600\n" + hosts("lnx1")
    text += farm("tcp", [("lnx1", backend_port, None)])
    return text + service(vip_policy("idle-vip", vip_port, "tcp", sticky=False))


def _source(n: int) -> str:
    return f"127.0.{2 + (n // 250) % 50}.{1 + n % 250}"


def _open(n: int, vip_port: int, batch: int = 500) -> tuple[list[socket.socket], int]:
    socks: list[socket.socket] = []
    served = 0
    for first in range(0, n, batch):
        group = []
        for i in range(first, min(n, first + batch)):
            s = socket.socket()
            socks.append(s)
            s.settimeout(10)
            s.bind((_source(i), 0))
            s.connect((VIP, vip_port))
            group.append(s)
        for s in group:
            try:
                if s.recv(16) == b"lnx1\n":
                    served += 1
            except OSError:
                pass
    return socks, served


def _balancer(text: str, wd: Path, args: list[str]) -> BalancerProcess:
    """BalancerProcess picks its admin port(s) on construction; after heavy loopback
    traffic a run of free ports can be briefly missing, so try again a few times."""
    for attempt in range(5):
        try:
            return BalancerProcess(text, wd, args=args)
        except RuntimeError:
            if attempt == 4:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def idle_connections(n: int, workdir: Path | None = None) -> IdleRun:
    hard = raise_nofile(n + SLACK_FDS)
    workers = 1 if 2 * n + SLACK_FDS <= hard else 2
    if workers == 2 and n + SLACK_FDS > hard:
        raise RuntimeError(f"{n} connections need more than the hard RLIMIT_NOFILE {hard} in one worker")
    tmp = tempfile.TemporaryDirectory(prefix="buddylb-idle-") if workdir is None else None
    wd = Path(tmp.name) if tmp is not None else workdir
    assert wd is not None
    vip_port, backend_port = free_port(VIP), free_port(BACKEND)
    ready = wd / "backend.ready"
    backend = subprocess.Popen([sys.executable, "-m", "soak.idle_l4", "backend", BACKEND, str(backend_port),
                                str(ready)], cwd=Path(__file__).resolve().parent.parent)
    socks: list[socket.socket] = []
    try:
        if not wait_for(lambda: ready.exists() or backend.poll() is not None, 15):
            raise RuntimeError("the idle backend did not start")
        args = ["--access-log", "off"] + (["--workers", "2"] if workers == 2 else [])
        lb = _balancer(config(vip_port, backend_port), wd, args)
        lb.start()
        try:
            assert lb.proc is not None
            time.sleep(0.5)
            before = rss_of(lb.proc.pid)
            start = time.monotonic()
            socks, served = _open(n, vip_port)
            opened = time.monotonic() - start
            time.sleep(1.0)
            after = rss_of(lb.proc.pid)
            sample = random.Random(7).sample(socks, min(100, len(socks)))
            echo_ok = 0
            for s in sample:
                try:
                    s.sendall(b"ping")
                    echo_ok += s.recv(16) == b"ping"
                except OSError:
                    pass
            return IdleRun(n, served, len(sample), echo_ok, workers, hard, before, after, round(opened, 2))
        finally:
            for s in socks:
                s.close()
            lb.stop()
    finally:
        stop(backend)
        if tmp is not None:
            tmp.cleanup()


# -- the backend child process ---------------------------------------------------------
class _Greeter(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        transport.write(b"lnx1\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.t.write(data)  # type: ignore[attr-defined]


def _backend(host: str, port: int, ready: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Greeter, host, port, backlog=4096)
        ready.write_text(str(os.getpid()))
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["backend"]:
        _backend(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
