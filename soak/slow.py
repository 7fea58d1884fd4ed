"""Slowloris and slow-read clients beside a permitted client (issue 13, "Done when": the
slowhttptest runs, or equivalents in `make soak`, show no failed request for permitted
clients). The same attack runs against buddylb and, where installed, HAProxy.

Attackers (one thread, non-blocking sockets, bounded in count and time):
- slowloris: `loris` connections each send a request line, then one header line a
  second and never the empty line; a connection the proxy closes (408 after `timeout
  http-request`) is opened again, as slowhttptest does, so the pressure stays;
- slow read: `readers` connections each ask for a 1 MB body with a 4 KiB receive
  buffer and read 64 bytes a second; the proxy must cut them at `timeout client`.
The permitted client sends sequential requests on fresh connections the whole time;
its failures (anything but a complete 200) are the figure that must be 0.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

VIP = "127.0.0.100"
TIMEOUT_S = 4  # timeout http-request and timeout client, on both proxies


@dataclass
class SlowRun:
    permitted: int = 0
    failed: int = 0
    max_ms: float = 0.0
    p99_ms: float = 0.0
    loris_opened: int = 0
    loris_closed_by_proxy: int = 0
    readers_cut: int = 0
    readers: int = 0
    latencies: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"permitted client: {self.permitted - self.failed:,}/{self.permitted:,} requests 200, p99 "
                f"{self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms; slowloris connections closed by the proxy "
                f"{self.loris_closed_by_proxy:,} of {self.loris_opened:,} opened; slow readers cut off "
                f"{self.readers_cut}/{self.readers}")


def _open(port: int, source: str, request: bytes, rcvbuf: int | None = None) -> socket.socket | None:
    """A non-blocking attacker connection from `source` that has sent `request`; None when
    the proxy would not take it (refused, reset, or no answer to the connect in 2 s)."""
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        s.bind((source, 0))
        s.settimeout(2)
        s.connect((VIP, port))
        s.sendall(request)
        s.setblocking(False)
    except OSError:
        s.close()
        return None
    return s


def _attack(port: int, loris: int, readers: int, seconds: float, run: SlowRun, stop: threading.Event) -> None:
    def open_loris(i: int) -> socket.socket | None:  # a head that never ends
        s = _open(port, f"127.0.7.{1 + i % 250}", f"GET /loris HTTP/1.1\r\nHost: {VIP}\r\n".encode())
        if s is not None:
            run.loris_opened += 1
        return s

    def open_reader(i: int) -> socket.socket | None:  # a 1 MB answer into a 4 KiB receive buffer
        return _open(port, f"127.0.8.{1 + i % 250}", f"GET /big/1000000 HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode(),
                     rcvbuf=4096)

    slow = [open_loris(i) for i in range(loris)]
    reading = [open_reader(i) for i in range(readers)]
    run.readers = sum(1 for s in reading if s is not None)
    end = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < end and not stop.is_set():
        tick += 1
        for i, s in enumerate(slow):
            if s is None:
                slow[i] = open_loris(i)
                continue
            try:
                got: bytes | None = s.recv(4096)
            except BlockingIOError:
                got = None
            except OSError:
                got = b""
            if got is None:
                try:
                    s.send(f"X-Slow-{tick}: {i}\r\n".encode())
                    continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
            s.close()  # an answer (408), a close or a reset: the proxy gave up on it; open another
            run.loris_closed_by_proxy += 1
            slow[i] = open_loris(i)
        for i, s in enumerate(reading):
            if s is None:
                continue
            try:
                if s.recv(64) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                reading[i] = None
                run.readers_cut += 1
        stop.wait(1.0)
    for i, s in enumerate(reading):  # a reader the proxy closed (FIN after its buffer) sees the end now
        if s is None:
            continue
        try:
            while s.recv(1 << 20):
                pass
            run.readers_cut += 1  # b"": the proxy closed it
        except BlockingIOError:
            pass  # still open: not cut
        except OSError:
            run.readers_cut += 1
    for s in slow + reading:
        if s is not None:
            s.close()


def _permitted(port: int, seconds: float, run: SlowRun) -> None:
    from tests.support.net import http_get

    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end and n < 100_000:
        n += 1
        t0 = time.monotonic()
        try:
            status, _, body = http_get(f"127.0.3.{1 + n % 200}", VIP, port, timeout=5)
            ok = status == 200 and len(body) > 0
        except OSError:
            ok = False
        run.latencies.append(time.monotonic() - t0)
        run.permitted += 1
        run.failed += 0 if ok else 1
        time.sleep(0.01)


def drive(port: int, loris: int, readers: int, seconds: float) -> SlowRun:
    run, stop = SlowRun(), threading.Event()
    attacker = threading.Thread(target=_attack, args=(port, loris, readers, seconds, run, stop), daemon=True)
    attacker.start()
    time.sleep(1.0)  # the attack is in place before the permitted client starts
    _permitted(port, seconds - 1.0, run)
    stop.set()
    attacker.join(30)
    lat = sorted(run.latencies)
    run.max_ms = lat[-1] * 1000 if lat else 0.0
    run.p99_ms = lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0
    return run


def buddylb_slow(workdir: Path, loris: int, readers: int, seconds: float) -> SlowRun:
    from tests.e2e.configs import farm, hosts, service, vip_policy
    from tests.support.backends import Backends
    from tests.support.balancer import BalancerProcess
    from tests.support.net import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    a, port = free_port("127.0.1.11"), free_port(VIP)
    text = (f"timeout http-request {TIMEOUT_S}\ntimeout client {TIMEOUT_S}\n" + hosts("lnx1")
            + farm("web", [("lnx1", a, None)]) + service(vip_policy("v", port, "web", http=True, sticky=False)))
    with Backends() as bk:
        bk.http("lnx1", "127.0.1.11", a)
        with BalancerProcess(text, workdir, args=["--access-log", "off"]):
            return drive(port, loris, readers, seconds)


def haproxy_slow(workdir: Path, loris: int, readers: int, seconds: float) -> SlowRun | None:
    from soak import haproxy

    if not haproxy.installed():
        return None
    from tests.support.backends import Backends
    from tests.support.net import free_port

    a, port = free_port("127.0.1.11"), free_port(VIP)
    config = (f"defaults\n    mode http\n    timeout connect 3s\n    timeout client {TIMEOUT_S}s\n"
              f"    timeout server 30s\n    timeout http-request {TIMEOUT_S}s\n"
              f"frontend f\n    bind {VIP}:{port}\n    default_backend b\n"
              f"backend b\n    server s1 127.0.1.11:{a}\n")
    with Backends() as bk:
        bk.http("lnx1", "127.0.1.11", a)
        with haproxy.running(workdir, config, (VIP, port)):
            return drive(port, loris, readers, seconds)
