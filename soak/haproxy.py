"""HAProxy beside buddylb in the soak runs (attacks.py's descriptor flood, slow.py's slow
clients): one way to run it in the foreground (`-db`) with a config written to the run's
directory, wait until it listens, and always stop it, so each attack compares the two
proxies under the same start and stop.  Its stderr goes to `haproxy.stderr` there."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.procs import stop

READY_S = 10.0  # how long HAProxy has to listen before the attack starts anyway (as it always did)


def installed() -> bool:
    return shutil.which("haproxy") is not None


@contextmanager
def running(workdir: Path, config: str, listen: tuple[str, int], nofile: int | None = None) -> Iterator[None]:
    """HAProxy with `config`, listening on `listen`, for the duration of the block;
    `nofile`: its descriptor limit (RLIMIT_NOFILE), as buddylb's in the same attack."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(config)

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with open(workdir / "haproxy.stderr", "wb") as stderr:
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=limit if nofile is not None else None)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_S:
            try:
                socket.create_connection(listen, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield
    finally:
        stop(proc)
