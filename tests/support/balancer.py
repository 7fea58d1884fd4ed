"""Run `buddylb run` as a real subprocess for end-to-end tests, and always clean it up."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.net import free_port, free_port_run, wait_for
from tests.support.procs import stop


class BalancerProcess:
    def __init__(self, config_text: str, workdir: Path, *, args: list[str] | None = None,
                 env: dict | None = None, nofile: int | None = None) -> None:
        self.workdir = workdir
        self.config = workdir / "buddylb.cfg"
        self.config.write_text(config_text)
        workers = int(args[args.index("--workers") + 1]) if args and "--workers" in args else 1
        self.admin_port = free_port_run(workers)  # worker i serves its admin API on port + i
        self.admin = f"127.0.0.1:{self.admin_port}"
        self.ready = workdir / "ready"
        self.log = workdir / "access.log"
        self.stderr_path = workdir / "stderr.log"
        self.args = args or []
        self.env = env
        self.nofile = nofile  # a soft RLIMIT_NOFILE for the child (descriptor-exhaustion tests)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> "BalancerProcess":
        if self.ready.exists():
            self.ready.unlink()
        cmd = [sys.executable, "-m", "buddylb", "run", str(self.config), "--admin", self.admin,
               "--ready-file", str(self.ready), "--access-log", str(self.log),
               "--secret-file", str(self.workdir / "secret"), *self.args]
        env = dict(os.environ) | (self.env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"), env=env,
                                     preexec_fn=self._limit if self.nofile is not None else None)
        if not wait_for(lambda: self.ready.exists() or self.proc.poll() is not None, timeout):
            self.stop()
            raise RuntimeError("buddylb did not become ready:\n" + self.stderr())
        if self.proc.poll() is not None:
            raise RuntimeError(f"buddylb exited {self.proc.returncode}:\n" + self.stderr())
        return self

    def _limit(self) -> None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, min(self.nofile, hard)))  # both: run raises soft to hard

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def reload(self, config_text: str | None = None) -> None:
        if config_text is not None:
            self.config.write_text(config_text)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.admin}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if method == "POST" else {})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> int | None:
        return stop(self.proc) if self.proc is not None else None

    def __enter__(self) -> "BalancerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
