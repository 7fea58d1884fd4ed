"""A real redis-server on a free loopback port, in a temp dir, always stopped."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import redis

from tests.support.net import free_port
from tests.support.procs import stop


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="buddylb-redis-")
        self.proc: subprocess.Popen | None = None
        self.args: list[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, args: list[str] | None = None) -> "RedisServer":
        """Start (or start again, on the same port, empty); `args` are kept for restarts."""
        if args is not None:
            self.args = list(args)
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    client.close()
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, grace_s=5)
        self.proc = None

    def kill(self) -> None:
        """kill -9: no shutdown, no save (with --save '' it comes back empty)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def entry_key(config_text: str, prefix: str, client: str, vip: tuple[str, int]) -> str:
    """The Redis key a node running `config_text` writes for `client` at `vip` (store.record)."""
    from buddylb.core.decide import Flow
    from buddylb.core.store import locate
    from buddylb.store import record
    from tests.core.engine import load

    snap = load(config_text)
    v = snap.vips[vip]
    where = locate(snap, v, Flow(client, v.address), b"s" * 32)
    assert where is not None, "no sticky entry for this client at this VIP"
    return record.entry_key(prefix, v.context, where[0], where[1])
