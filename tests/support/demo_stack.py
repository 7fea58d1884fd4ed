"""The demo's own stack (both contexts, real servers, `buddylb run`) for tests that drive
it: the drain-preview end-to-end test and the browser tests see what `make demo` shows."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from buddylb.demo.backends import DemoBackends
from buddylb.demo.balancer import DemoBalancer
from buddylb.demo.config import DemoPorts
from buddylb.demo.runner import prepare_stack
from buddylb.demo.scenario import AccessLogReader


@dataclass
class DemoStack:
    lb: DemoBalancer
    ports: DemoPorts
    log: AccessLogReader

    def call(self, method: str, words: list[str], body: dict | None = None, **query: str):
        return self.lb.api.call(method, words, query or None, body)


@contextlib.contextmanager
def demo_stack() -> Iterator[DemoStack]:
    """Started demo servers and balancer; everything stops and the temp dir goes after."""
    workdir = Path(tempfile.mkdtemp(prefix="buddylb-test-demo-"))
    backends = DemoBackends()
    lb = None
    try:
        lb, ports = prepare_stack(workdir, backends)
        lb.start()
        yield DemoStack(lb, ports, AccessLogReader(lb.access_log))
    finally:
        if lb is not None:
            lb.stop()
        backends.close()
        shutil.rmtree(workdir, ignore_errors=True)
