"""Stopping a child process the tests (and soak/) started, one way: SIGTERM, a grace
period, then SIGKILL; always reaped, so no test leaves a process or a zombie behind."""
from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """Stop `proc` if it still runs (SIGTERM, then SIGKILL after `grace_s`); its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
