"""From source to a working install, the way an operator does it (README "Install on a
server", the Containerfile): build the sdist and the wheel from a copy of this checkout,
install the wheel into a fresh venv with contrib/install/install-wheel.sh (offline, from
the dependency wheels `make venv` collected), then `buddylb check` and `buddylb run`
from outside the source tree."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import free_port_run, http_get
from tests.support.notify import NotifySocket

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(sys.prefix) / "wheels"
SKIP = shutil.ignore_patterns(".venv", ".git", "dist", "build", "*.egg-info", "__pycache__", ".hypothesis", "*.so",
                              "bench-out", "out")


def _sh(*cmd: str, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    if not WHEELS.is_dir():
        pytest.skip(f"{WHEELS} is missing: run `make venv` (it collects the dependency wheels)")
    work = tmp_path_factory.mktemp("install")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    # make dist, offline: the build requirements are in this venv (make venv installs them).
    # BUDDYLB_PURE=1: the packaging is what is tested here, without compiling the Cython
    # modules (minutes on a busy machine); tests/core/test_compiled.py covers both builds.
    _sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), str(src),
        env={**os.environ, "BUDDYLB_PURE": "1"})
    sdists, wheels = list((work / "dist").glob("buddylb-*.tar.gz")), list((work / "dist").glob("buddylb-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1
    prefix = work / "opt-buddylb"
    env = {**os.environ, "PYTHON": sys.executable, "PIP_ARGS": f"--no-index --find-links {WHEELS}"}
    out = _sh("sh", str(ROOT / "contrib" / "install" / "install-wheel.sh"), str(prefix), str(wheels[0]),
              env=env, cwd=work)
    assert "buddylb, version" in out.stdout
    return prefix


def test_the_wheel_installs_a_complete_buddylb(installed):
    where = _sh(str(installed / "bin" / "python"), "-c", "import buddylb, buddylb.cli; print(buddylb.__file__)",
                cwd="/").stdout.strip()
    assert where.startswith(str(installed)), where  # not this checkout
    for example in ("web-app-tiers.cfg",):
        out = _sh(str(installed / "bin" / "buddylb"), "check", str(ROOT / "examples" / example), cwd="/")
        assert "OK (1 context(s), 2 VIP(s)" in out.stdout


def test_the_installed_buddylb_runs_and_serves(installed, tmp_path, backends):
    vip_port, backend_port = free_port_run(1, VIP), free_port_run(1, "127.0.1.11")
    backends.http("lnx1", "127.0.1.11", backend_port)
    cfg = tmp_path / "buddylb.cfg"
    cfg.write_text(hosts("lnx1") + farm("app", [("lnx1", backend_port, None)])
                   + service(vip_policy("v", vip_port, "app", http=True, sticky=False)))
    rx = NotifySocket(str(tmp_path / "notify"))
    proc = subprocess.Popen([str(installed / "bin" / "buddylb"), "run", str(cfg), "--admin",
                             f"127.0.0.1:{free_port_run(1)}", "--access-log", "off"], cwd="/",
                            env={**os.environ, "NOTIFY_SOCKET": rx.env_value}, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "stderr", "w"))
    try:
        rx.wait("READY", timeout=30)
        assert http_get("127.0.0.10", VIP, vip_port, "/")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "stderr").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        rx.close()


def test_containerfile_runs_the_tested_steps():
    text = (ROOT / "Containerfile").read_text()
    assert "FROM docker.io/library/debian:bookworm-slim" in text
    assert "COPY contrib/install/install-wheel.sh /tmp/install-wheel.sh" in text
    assert 'PIP_ARGS="--no-index --find-links /wheels" sh /tmp/install-wheel.sh /opt/buddylb' in text
    assert "USER buddylb" in text and '"run", "/etc/buddylb/buddylb.cfg"' in text
