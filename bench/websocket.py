"""The WebSocket scenario of `make bench` (issue 16 item 4): echo through the balancer.

`python -m bench.run --only websocket`.  N client connections (from N source addresses
127.0.0.10+i, so stickiness spreads them over both rservers) each open a WebSocket to
the HTTP VIP and then echo one small message at a time (send a frame, wait for the
reply frame, send the next) until the run's time is up or M messages are done (both
bounds are fixed: nothing runs unbounded).  The same traffic goes through buddylb (L7
VIP: decided, upgraded, then its tunnel), HAProxy (`mode http`, `timeout tunnel 1h`) and
the bare-relay ceiling (`bench.relay --mode l4`: after the 101 every balancer is a byte
relay, so the L4 relay is the ceiling).  Reported: messages/s (one message = one
round trip, a frame each way through the balancer), the ratios, and the balancer's CPU
µs per message (utime+stime over the measured run / messages).

The client and the backends must not be the bottleneck, so both are small uvloop
programs of this module with precomputed frames: the client sends a fixed masked text
frame and counts reply bytes; the backend answers the handshake (a real
Sec-WebSocket-Accept), then answers every complete client frame with a fixed unmasked
reply frame.  Both run on the load core, the balancer alone on its core, as in
`bench.proxy`.  Every process started is stopped in a finally block.

  python -m bench.websocket serve HOST PORT[,PORT] READY_FILE
  python -m bench.websocket client VIP PORT CONNECTIONS SECONDS MAX_MESSAGES
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from bench import configs, proxy, tools
from bench.configs import HOSTS, VIP, Ports
from bench.procs import Service

CONNECTIONS = 50
MAX_MESSAGES = 2_000_000  # per connection: the count bound (time ends a run first)
PAYLOAD = b"buddylb bench: a small WebSocket chat message, 64 bytes long.\n.."[:64]
MASK = b"\x37\xfa\x21\x3d"
CLIENT_FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(PAYLOAD))
SERVER_FRAME = bytes([0x81, len(PAYLOAD)]) + PAYLOAD
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


# -- the backend -----------------------------------------------------------------------------
class EchoServer(asyncio.Protocol):
    """Handshake, then one fixed reply frame per complete client frame."""

    def __init__(self) -> None:
        self.head = b""
        self.pending = -1  # bytes of an incomplete client frame; -1: before the handshake

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.pending < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            key = next((line.split(b":", 1)[1].strip() for line in self.head[:end].split(b"\r\n")
                        if line.lower().startswith(b"sec-websocket-key:")), b"")
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept)
            data, self.pending = self.head[end + 4:], 0
        n, self.pending = divmod(self.pending + len(data), len(CLIENT_FRAME))
        if n:
            self.transport.write(SERVER_FRAME * n)


async def serve(host: str, ports: list[int], ready: Path) -> None:
    loop = asyncio.get_running_loop()
    for port in ports:
        await loop.create_server(EchoServer, host, port, reuse_address=True, backlog=1024)
    ready.write_text("ok")
    await asyncio.Event().wait()  # until SIGTERM (procs.Service stops the process group)


# -- the client ------------------------------------------------------------------------------
class EchoClient(asyncio.Protocol):
    """One connection: upgrade, then echo until the deadline or `limit` messages."""

    def __init__(self, deadline: float, limit: int, done: asyncio.Future) -> None:
        self.deadline, self.limit, self.done = deadline, limit, done
        self.head = b""
        self.got = -1  # reply bytes of the message in flight; -1: before the 101
        self.messages = 0
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"GET /chat HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % KEY)

    def data_received(self, data: bytes) -> None:
        if self.got < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101 "):
                self._finish(f"no 101: {self.head[:60]!r}")
                return
            data, self.got = self.head[end + 4:], 0
            self.transport.write(CLIENT_FRAME)
        self.got += len(data)
        size = len(SERVER_FRAME)
        while self.got >= size:
            self.got -= size
            self.messages += 1
            if self.messages >= self.limit or self.loop.time() >= self.deadline:
                self._finish(None)
                return
            self.transport.write(CLIENT_FRAME)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish("connection lost" if self.messages < self.limit and self.loop.time() < self.deadline else None)

    def _finish(self, error: str | None) -> None:
        if not self.done.done():
            self.done.set_result((self.messages, error))
            self.transport.close()


async def load(vip: str, port: int, connections: int, seconds: float, limit: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds
    futures = []
    for i in range(connections):
        done = loop.create_future()
        futures.append(done)
        await loop.create_connection(lambda d=done: EchoClient(deadline, limit, d), vip, port,
                                     local_addr=(f"127.0.0.{10 + i % 200}", 0))
    results = await asyncio.wait_for(asyncio.gather(*futures), seconds + 30)
    wall = loop.time() - start
    messages = sum(m for m, _ in results)
    errors = [e for _, e in results if e]
    return {"messages": messages, "wall_s": wall, "messages_per_s": messages / wall if wall else None,
            "errors": len(errors), "first_error": errors[0] if errors else None}


# -- the run ---------------------------------------------------------------------------------
def _python() -> list[str]:
    return [sys.executable, "-m", "bench.websocket"]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))


def run_websocket(workdir: Path, artifacts: Path, programs: dict[str, str | None], seconds: int,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Backends once, then buddylb, HAProxy and the ceiling in turn with the same client."""
    both = tuple(HOSTS.values())
    back = (tools.free_port(*both), tools.free_port(*both))
    cert = configs.make_cert(workdir)
    out: dict[str, Any] = {"settings": {"connections": CONNECTIONS, "seconds": seconds, "max_messages": MAX_MESSAGES,
                                        "payload_bytes": len(PAYLOAD), "balancer_pin": " ".join(
                                            tools.pin(proxy.BALANCER_CORE)) or "none",
                                        "load_pin": " ".join(tools.pin(proxy.LOAD_CORE)) or "none"}}
    backends = []
    try:
        for name, host in HOSTS.items():
            ready = workdir / f"ws-{name}.ready"
            svc = Service(f"ws-{name}", [*tools.pin(proxy.LOAD_CORE), *_python(), "serve", host,
                                         f"{back[0]},{back[1]}", str(ready)], workdir, env=_env())
            backends.append(svc)
            svc.start(ready.exists)
        log(f"websocket: echo backends on {', '.join(both)} ports {back[0]}, {back[1]}")
        for kind in proxy.BALANCERS:
            log(f"websocket: {kind}")
            out[kind] = _one(kind, workdir, artifacts, programs, cert, back, seconds)
    finally:
        for svc in backends:
            svc.stop()
    return out


def _one(kind: str, workdir: Path, artifacts: Path, programs: dict[str, str | None], cert: Any,
         back: tuple[int, int], seconds: int) -> dict[str, Any]:
    ports = Ports(back[0], back[1], tools.free_port(VIP), tools.free_port(VIP))
    if kind == "buddylb":
        lb: Any = proxy.BuddyLB(workdir, ports, True, cert, label="buddylb-ws")
    elif kind == "haproxy":
        lb = proxy.HAProxy(workdir, ports, True, cert, programs["haproxy"] or "haproxy", label="haproxy-ws")
    else:
        lb = proxy.Ceiling(workdir, ports, False, cert, label="ceiling-ws")  # after the 101: a byte relay
    svc = lb.service()
    shutil.copy(lb.config, artifacts / f"{lb.dir.name}.cfg")
    result: dict[str, Any] = {"config": f"{lb.dir.name}.cfg"}
    try:
        svc.start(lb.is_ready)
        pids = tools.process_tree(svc.pid)
        client = [*tools.pin(proxy.LOAD_CORE), *_python(), "client", VIP, str(ports.vip_http)]
        tools_run(client + [str(CONNECTIONS), "1", "200"])  # warm-up: connections, decisions, entries
        cores0, cpu0 = tools.core_busy(), tools.cpu_seconds(pids)
        r = tools_run(client + [str(CONNECTIONS), str(seconds), str(MAX_MESSAGES)])
        used = tools.cpu_seconds(pids) - cpu0
        result.update(r)
        result["balancer_cpu_pct"] = 100 * used / r["wall_s"]
        result["balancer_cpu_us_per_message"] = 1e6 * used / r["messages"] if r["messages"] else None
        result["core_busy_pct"] = tools.busy_pct(cores0, tools.core_busy())
        result["alive_after"] = svc.alive()
    except Exception as exc:  # a failed balancer is a finding, not the end of the run
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["returncode"] = svc.stop()
        result["stderr"] = svc.stderr_tail(3000)
    return result


def tools_run(cmd: list[str]) -> dict[str, Any]:
    import subprocess

    done = subprocess.run(cmd, capture_output=True, timeout=120, env=_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench client exited {done.returncode}: {done.stderr.decode()[-800:]}")
    return json.loads(done.stdout)


# -- BENCHMARKS.md --------------------------------------------------------------------------
def report_lines(sec: dict[str, Any] | None, measured: str, n: Callable, ratio: Callable,
                 table: Callable) -> list[str]:
    if not sec:
        return []
    b, h, c = (sec.get(k) or {} for k in proxy.BALANCERS)
    st = sec.get("settings", {})
    lines = [f"### WebSocket echo through the HTTP VIP (`websocket`){measured}", "",
             f"{st.get('connections')} connections from as many source addresses, each echoing one "
             f"{st.get('payload_bytes')}-byte text message at a time for {st.get('seconds')} s (a message = "
             "one frame each way through the balancer); bench/websocket.py's uvloop client and echo backends "
             f"with precomputed frames on the load core ({st.get('load_pin')}), the balancer on "
             f"{st.get('balancer_pin')}. HAProxy `mode http` with `timeout tunnel`; the ceiling is "
             "`bench.relay --mode l4` (after the 101 every balancer is a byte relay).", ""]

    def row(label: str, key: str, digits: int = 0, with_ratio: bool = True) -> list[str]:
        vb, vh, vc = b.get(key), h.get(key), c.get(key)
        return [label, n(vb, digits), n(vh, digits), n(vc, digits), ratio(vb, vh) if with_ratio else "",
                ratio(vb, vc) if with_ratio else ""]

    rows = [row("messages/s", "messages_per_s"), row("balancer CPU (% of one core)", "balancer_cpu_pct"),
            row("balancer CPU µs per message", "balancer_cpu_us_per_message", 1),
            row("messages completed", "messages", with_ratio=False),
            row("client errors", "errors", with_ratio=False)]
    for kind, r in (("buddylb", b), ("HAProxy", h), ("ceiling", c)):
        if r.get("error"):
            rows.append([f"{kind} failed", r["error"].replace("|", "/")[:200], "", "", "", ""])
    return lines + table(["", "buddylb", "HAProxy", "ceiling", "buddylb / HAProxy", "buddylb / ceiling"], rows)


def _main(argv: list[str]) -> int:
    import uvloop

    if argv[0] == "serve":
        uvloop.run(serve(argv[1], [int(p) for p in argv[2].split(",")], Path(argv[3])))
        return 0
    vip, port, conns, secs, limit = argv[1], int(argv[2]), int(argv[3]), float(argv[4]), int(argv[5])
    print(json.dumps(uvloop.run(load(vip, port, conns, secs, limit))))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
