"""The balancer under demonstration: `buddylb run` as a child process, and its admin API.

Owns the child's lifetime: start it with `sys.executable -m buddylb run CFG --admin ...
--access-log PATH --ready-file PATH`, wait for the ready file, stop it with SIGTERM
(SIGKILL after a grace period).  The child imports the same buddylb as this process.
It never drives traffic; `scenario` does, and reads the access log this class names.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import buddylb
from buddylb.admin.client import AdminClient
from buddylb.errors import CommandError

READY_TIMEOUT_S = 20.0
STOP_GRACE_S = 10.0


class DemoBalancer:
    def __init__(self, workdir: Path, config: Path, admin: str) -> None:
        self.config = config
        self.admin = admin
        self.ready = workdir / "ready"
        self.access_log = workdir / "access.log"
        self.log = workdir / "buddylb.log"
        self.api = AdminClient(admin, timeout=10.0)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "buddylb", "run", str(self.config), "--admin", self.admin,
               "--access-log", str(self.access_log), "--ready-file", str(self.ready)]
        env = dict(os.environ)
        src = str(Path(buddylb.__file__).resolve().parent.parent)  # run the very buddylb this is
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         env=env, start_new_session=True)  # Ctrl-C is ours to relay
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise CommandError(f"buddylb run exited with status {self.proc.returncode}:\n{self.log_tail()}", 1)
            if time.monotonic() > deadline:
                self.stop()
                raise CommandError(f"buddylb run was not ready after {READY_TIMEOUT_S:g} s:\n{self.log_tail()}", 1)
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("  " + ln for ln in text.splitlines()[-lines:])

    def call(self, method: str, words: list[str], body: dict[str, Any] | None = None) -> Any:
        return self.api.call(method, words, body=body)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> int | None:
        """SIGTERM (drain and exit), then SIGKILL if it lingers; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
