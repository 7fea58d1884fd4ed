"""Real Redis topologies on loopback for the store tests (issue 15): a primary with a
replica and three Sentinels, and a six-process Redis Cluster.  Free high ports, a temp
dir each, and `cleanup()` kills every process it started (tests call it in `finally`)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.net import free_port
from tests.support.redis import RedisServer


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (redis.exceptions.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class SentinelSet:
    """A primary, one replica and three Sentinels (quorum 2, down after 1 s)."""

    MASTER = "mymaster"

    def __init__(self) -> None:
        self.primary = RedisServer()
        self.replica = RedisServer()
        self.ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="buddylb-sentinel-"))
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis-sentinel://{hosts}/{self.MASTER}/0"

    def start(self) -> "SentinelSet":
        self.primary.start()
        self.replica.start(["--replicaof", "127.0.0.1", str(self.primary.port)])
        r = redis.Redis(port=self.replica.port, decode_responses=True)
        _wait(lambda: r.info("replication").get("master_link_status") == "up", 15, "the replica to sync")
        exe = shutil.which("redis-server")
        assert exe is not None
        for port in self.ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                            f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                            f"sentinel failover-timeout {self.MASTER} 5000\n"
                            f"sentinel parallel-syncs {self.MASTER} 1\n")
            self.procs.append(subprocess.Popen([exe, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        for port in self.ports:  # every Sentinel knows the two others and the replica
            s = redis.Redis(port=port, decode_responses=True)
            _wait(lambda: len(s.sentinel_sentinels(self.MASTER)) == 2 and s.sentinel_slaves(self.MASTER), 20,
                  f"sentinel {port} to find its peers")
        return self

    def primary_port(self) -> int:
        s = redis.Redis(port=self.ports[0], decode_responses=True)
        return int(s.sentinel_get_master_addr_by_name(self.MASTER)[1])

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for srv in (self.primary, self.replica):
            srv.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisClusterSet:
    """Six redis-server processes in cluster mode: three primaries, three replicas."""

    def __init__(self) -> None:
        self.nodes = [RedisServer() for _ in range(6)]

    @property
    def url(self) -> str:
        return "redis-cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> "RedisClusterSet":
        for n in self.nodes:
            # the bus port is set (Redis >= 7): the default, port + 10000, may be taken or over 65535
            n.start(["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                     "--cluster-config-file", f"{n.dir}/nodes.conf",
                     "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"])
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install -y redis-tools)")
        out = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                              "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
        for n in self.nodes:
            r = redis.Redis(port=n.port, decode_responses=True)
            _wait(lambda: r.cluster("info").get("cluster_state") == "ok", 30, f"node {n.port} to see the cluster ok")
        return self

    def primaries(self) -> list[RedisServer]:
        """The primaries a live node sees as serving (not failed)."""
        alive = next(n for n in self.nodes if n.proc is not None)
        r = redis.Redis(port=alive.port, decode_responses=True)
        ports = {int(addr.split("@")[0].rsplit(":", 1)[1]) for addr, info in r.cluster("nodes").items()
                 if "master" in info["flags"] and "fail" not in info["flags"]}
        return [n for n in self.nodes if n.port in ports]

    def cleanup(self) -> None:
        for n in self.nodes:
            n.cleanup()
