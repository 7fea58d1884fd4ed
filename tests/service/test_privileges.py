"""`user` / `group` (SPEC §2.1): bind as root, then serve as `nobody`; a reload still binds
a privileged port (CAP_NET_BIND_SERVICE kept, nothing else)."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from buddylb.service.privileges import CAP_NET_BIND_SERVICE, capabilities
from tests.e2e.configs import farm, hosts
from tests.support.balancer import BalancerProcess
from tests.support.net import free_port, http_get, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binding port 80 and switching users needs root")

NOBODY = pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _free_privileged_address(ports: tuple[int, ...] = (80, 81)) -> str:
    """A 127.0.0.N (N in 150..249) whose `ports` are all free now."""
    for n in range(150, 250):
        addr, held = f"127.0.0.{n}", []
        try:
            for p in ports:
                s = socket.socket()
                held.append(s)
                s.bind((addr, p))
            return addr
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no 127.0.0.N with ports 80 and 81 free")


def _vips(addr: str, vip_ports: list[int]) -> str:
    out = ""
    for port in vip_ports:
        out += (f"class-map match-all v{port}\n  2 match virtual-address {addr} tcp eq {port}\n"
                f"policy-map type loadbalance http first-match v{port}-lb\n  class class-default\n"
                f"    serverfarm app\n")
    out += "policy-map multi-match int\n"
    for port in vip_ports:
        out += f"  class v{port}\n    loadbalance vip inservice\n    loadbalance policy v{port}-lb\n"
    return out + "service-policy input int\n"


def _status(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.split() for k, _, v in (line.partition(":") for line in f)}


@pytest.fixture
def shared_dir():
    """A directory nobody can read (tmp_path's parents are root-only): the config must be
    readable after the drop, for reloads."""
    d = Path(tempfile.mkdtemp(prefix="buddylb-priv-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _workdir(shared_dir: Path) -> Path:
    wd = shared_dir / "lb"
    wd.mkdir()
    os.chown(wd, NOBODY.pw_uid, NOBODY.pw_gid)  # ready file and access log reopen, after the drop
    return wd


def _serves(addr: str, port: int) -> bool:
    try:
        return http_get("127.0.0.10", addr, port, "/")[0] == 200
    except OSError:
        return False


def test_binds_port_80_as_root_then_serves_as_nobody_and_reload_binds_port_81(shared_dir, backends):
    addr, backend_port = _free_privileged_address(), free_port("127.0.1.11")
    backends.http("lnx1", "127.0.1.11", backend_port)
    head = "user nobody\ngroup nogroup\n" + hosts("lnx1") + farm("app", [("lnx1", backend_port, None)])
    lb = BalancerProcess(head + _vips(addr, [80]), _workdir(shared_dir))
    try:
        lb.start()
        st = _status(lb.proc.pid)
        nogroup = str(grp.getgrnam("nogroup").gr_gid)
        assert st["Uid"] == [str(NOBODY.pw_uid)] * 4 and st["Gid"] == [nogroup] * 4, (st["Uid"], st["Gid"])
        assert st["Groups"] in ([], [nogroup])  # root's supplementary groups are gone
        caps = capabilities(lb.proc.pid)
        assert caps["CapEff"] == caps["CapPrm"] == 1 << CAP_NET_BIND_SERVICE and caps["CapInh"] == 0, caps
        assert _serves(addr, 80)
        assert lb.api("/info")["data"]["vips"]  # the admin API was bound before the drop too

        lb.reload(head + _vips(addr, [80, 81]))  # as nobody: port 81 needs the kept capability
        assert wait_for(lambda: _serves(addr, 81), 10), lb.stderr()
        assert _serves(addr, 80)
        assert _status(lb.proc.pid)["Uid"] == [str(NOBODY.pw_uid)] * 4
    finally:
        code = lb.stop()
        assert code == 0, (code, lb.stderr())


def test_workers_each_drop_after_the_master_bound_port_80(shared_dir, backends):
    addr, backend_port = _free_privileged_address((80,)), free_port("127.0.1.11")
    backends.http("lnx1", "127.0.1.11", backend_port)
    text = hosts("lnx1") + farm("app", [("lnx1", backend_port, None)]) + _vips(addr, [80])
    lb = BalancerProcess(text, _workdir(shared_dir), args=["--workers", "2", "--user", "nobody"])
    try:
        lb.start()
        workers = [int(p) for p in Path(f"/proc/{lb.proc.pid}/task/{lb.proc.pid}/children").read_text().split()]
        assert len(workers) == 2
        for pid in workers:
            assert _status(pid)["Uid"] == [str(NOBODY.pw_uid)] * 4
        for i in range(4):
            assert http_get(f"127.0.0.{20 + i}", addr, 80, "/")[0] == 200
    finally:
        code = lb.stop()
        assert code == 0, (code, lb.stderr())


def _run_fails(cfg: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "buddylb", "run", str(cfg), "--admin",
                          f"127.0.0.1:{free_port()}", *args], capture_output=True, text=True, timeout=30,
                         cwd=cfg.parent)
    assert out.returncode == 1, out
    return out.stderr


def test_unknown_user_fails_with_file_and_line_before_binding(shared_dir):
    cfg = shared_dir / "lb.cfg"
    addr = _free_privileged_address((80,))
    cfg.write_text("timeout drain 1\nuser no-such-user-buddylb\n" + hosts("lnx1") + farm("app", [("lnx1", 8080, None)])
                   + _vips(addr, [80]))
    err = _run_fails(cfg)
    assert f"{cfg}:2: user 'no-such-user-buddylb' does not exist on this host; create it (useradd" in err, err
    assert "listening" not in err
    assert "--group: group 'no-such-group-bl' does not exist" in _run_fails(cfg, "--user", "nobody",
                                                                            "--group", "no-such-group-bl")


def test_not_root_and_asked_to_switch_refuses_clearly(shared_dir):
    """A process that is not root and asked to become someone else refuses at start-up
    (before binding), naming the fix.  Checked in a forked child that became nobody: this
    checkout's interpreter may sit where nobody cannot execute it."""
    from buddylb.config.parser import load_config
    from buddylb.errors import LbError
    from buddylb.service.privileges import run_as

    cfg = shared_dir / "lb.cfg"
    cfg.write_text("user daemon\n" + hosts("lnx1") + farm("app", [("lnx1", 8080, None)])
                   + _vips("127.0.0.1", [free_port()]))
    config = load_config(cfg)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        message = b"no error"
        try:
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            run_as(config)
        except LbError as exc:
            message = str(exc).encode()
        finally:
            os.write(wfd, message)
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    assert message.startswith("cannot switch to user daemon: buddylb runs as uid 65534, not root"), message
    assert run_as(config).user == "daemon"  # as root the same configuration is accepted


def test_the_drop_leaves_nothing_to_import_from_an_unreadable_installation(tmp_path):
    """A checkout in a 0700 directory (mktemp's) is unreadable by nobody: a module first
    imported after the drop (a reload's sticky carry-over) failed and the reload was lost.
    A child drops to nobody and then imports every runtime module with the installation
    unreadable to it (its search path is a 0700 directory) — all must already be loaded."""
    code = (
        "import importlib, sys\n"
        "from buddylb.service.privileges import drop, resolve, runtime_modules\n"
        "runtime = runtime_modules()\n"
        "assert len(runtime) > 50, runtime\n"
        "for name in runtime:  # the modules a balancer imports before it drops\n"
        "    if name.startswith(('buddylb.core.carry', 'buddylb.tls.hello')):\n"
        "        assert name not in sys.modules, name\n"
        "drop(resolve('nobody', 'nogroup'))\n"
        "missing = [name for name in runtime if name not in sys.modules]\n"
        "for name in missing:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        print('cannot import after the drop:', name, exc)\n"
        "print('missing', len(missing))\n")
    root = tmp_path / "install"  # 0700, root's
    root.mkdir(mode=0o700)
    shutil.copytree(Path(__file__).resolve().parents[2] / "src" / "buddylb", root / "buddylb",
                    ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(root)}, cwd=str(root))
    assert out.returncode == 0, out.stderr
    assert "cannot import after the drop" not in out.stdout and out.stdout.strip().endswith("missing 0"), out.stdout
