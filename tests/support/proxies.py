"""Real nginx and HAProxy processes for the PROXY protocol tests, always cleaned up.

Both run in the foreground (nginx: `daemon off; master_process off`, so no worker
switches user; HAProxy: `-db`) on free high ports of 127.0.x.y, with every file they
write in the test's temporary directory.  A missing binary skips the test with the
reason (CI installs both: .ci/run).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.net import wait_for
from tests.support.procs import stop

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class _Process:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.stderr_path = workdir / "stderr.log"

    def _run(self, cmd: list[str], ready: tuple[str, int]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"),
                                     cwd=self.workdir)
        if not wait_for(lambda: _port_open(*ready) or self.proc.poll() is not None, 10):
            self.stop()
            raise RuntimeError(f"{cmd[0]} did not listen on {ready}:\n{self.stderr_path.read_text()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited {self.proc.returncode}:\n{self.stderr_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


class Nginx(_Process):
    """nginx with one `listen ... proxy_protocol` server on host:port: it answers every
    request with `$proxy_protocol_addr $proxy_protocol_port` and logs the same fields
    (log_format pp) to `access.log`; `plain_port` is a listener without the protocol."""

    def __init__(self, workdir: Path, host: str, port: int, plain_port: int) -> None:
        if NGINX is None:
            pytest.skip("nginx is not installed here (CI installs it: .ci/run)")
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir)
        self.host, self.port, self.plain_port = host, port, plain_port
        self.access_log = workdir / "access.log"
        (workdir / "nginx.conf").write_text(f"""\
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr $connection $status "$request"';
    access_log {self.access_log} pp;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    keepalive_requests 1000;
    server {{
        listen {host}:{port} proxy_protocol;
        location / {{ default_type text/plain; return 200 "$proxy_protocol_addr $proxy_protocol_port\\n"; }}
    }}
    server {{
        listen {host}:{plain_port};
        location / {{ default_type text/plain; return 200 "plain\\n"; }}
    }}
}}
""")

    def start(self) -> "Nginx":
        assert NGINX is not None
        self._run([NGINX, "-p", str(self.workdir), "-e", str(self.workdir / "error.log"),
                   "-c", str(self.workdir / "nginx.conf")], (self.host, self.plain_port))
        return self

    def logged(self) -> list[list[str]]:
        """The access log's lines as fields: PROXY address, PROXY port, peer, nginx's
        connection serial number, status, request."""
        text = self.access_log.read_text() if self.access_log.exists() else ""
        return [line.split(" ", 5) for line in text.splitlines()]

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""


class Haproxy(_Process):
    """HAProxy listening on host:port in `mode`, sending every connection to one server
    line (`server_line`, e.g. "127.0.0.100:8080 send-proxy-v2") from `source`."""

    def __init__(self, workdir: Path, host: str, port: int, server_line: str, source: str, mode: str = "tcp") -> None:
        if HAPROXY is None:
            pytest.skip("haproxy is not installed here (CI installs it: .ci/run)")
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir)
        self.host, self.port = host, port
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(f"""\
global
    maxconn 256
defaults
    mode {mode}
    timeout connect 3s
    timeout client 30s
    timeout server 30s
frontend fe
    bind {host}:{port}
    default_backend be
backend be
    source {source}
    server lb {server_line}
""")

    def start(self) -> "Haproxy":
        assert HAPROXY is not None
        self._run([HAPROXY, "-db", "-f", str(self.config)], (self.host, self.port))
        return self
