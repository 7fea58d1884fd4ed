"""Access log delivery for operators: reopen on SIGUSR1 (logrotate), syslog over UDP and a
Unix socket as RFC 5424 frames, and the JSON schema the README documents."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from buddylb.errors import LbError
from buddylb.io.accesslog import AccessLog
from buddylb.io.record import FlowRecord
from buddylb.service.syslog import LIMIT_UDP, frame, parse_target
from tests.e2e.configs import farm, hosts, service, shopping_cart, vip_policy
from tests.e2e.conftest import VIP
from tests.support.net import http_get, wait_for
from tests.support.syslog import SyslogReceiver, parse_rfc5424

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"ts": float, "client": str, "vip": str, "class": (str, type(None)), "farm": (str, type(None)),
          "rserver": (str, type(None)), "outcome": (str, type(None)), "status": (int, str),
          "bytes_in": int, "bytes_out": int, "duration_s": (int, float), "mode": str}


def _http(ports, backends) -> str:
    backends.http("lnx1", "127.0.1.11", ports["a"])
    text = hosts("lnx1") + farm("app", [("lnx1", ports["a"], None)])
    return text + service(vip_policy("v", ports["vip"], "app", http=True, sticky=False))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr1_reopens_the_file_after_logrotate_renamed_it(ports, backends, balancer, workers):
    lb = balancer(_http(ports, backends), "--workers", str(workers))
    http_get("127.0.0.10", VIP, ports["vip"], "/before")
    assert wait_for(lambda: len(_lines(lb.log)) == 1, 5)
    rotated = lb.log.with_name("access.log.1")
    lb.log.rename(rotated)  # what logrotate does first
    lb.proc.send_signal(signal.SIGUSR1)  # its postrotate
    assert wait_for(lambda: lb.log.exists(), 5), lb.stderr()
    for i in range(3):
        http_get(f"127.0.0.{11 + i}", VIP, ports["vip"], f"/after{i}")
    assert wait_for(lambda: len(_lines(lb.log)) == 3, 5), _lines(lb.log)
    assert ['"GET /before"' in line for line in _lines(rotated)] == [True]
    assert all("/after" in line for line in _lines(lb.log))
    assert lb.proc.poll() is None  # SIGUSR1 never stops it


def _record(n: int) -> FlowRecord:
    rec = FlowRecord("127.0.0.1", "l4", time.time())
    rec.bytes_in = n
    return rec


def test_reopen_failure_keeps_writing_to_the_open_file(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    alog = AccessLog(str(d / "access.log"), "json")
    try:
        alog(_record(1))
        alog.flush()
        d.rename(tmp_path / "moved")  # the path can no longer be opened
        alog.reopen()
        alog(_record(2))
        alog.flush()
        moved = [json.loads(x)["bytes_in"] for x in (tmp_path / "moved" / "access.log").read_text().splitlines()]
        assert moved == [1, 2] and not d.exists()
    finally:
        alog.close()


def test_json_access_log_follows_the_documented_schema(ports, backends, balancer):
    lb = balancer(_http(ports, backends), "--access-log-format", "json")
    http_get("127.0.0.10", VIP, ports["vip"], "/x?y=1")
    assert wait_for(lambda: len(_lines(lb.log)) == 1, 5)
    record = json.loads(_lines(lb.log)[0])
    for name, kind in SCHEMA.items():
        assert isinstance(record[name], kind), (name, record)
    assert record["request"] == "GET /x?y=1" and record["mode"] == "http" and record["status"] == 200
    readme = (ROOT / "README.md").read_text()
    for name in [*SCHEMA, "request", "error"]:
        assert f"| `{name}` |" in readme, f"README's access-log schema misses {name}"


def test_syslog_over_udp_is_rfc5424(ports, backends, balancer):
    rx = SyslogReceiver()
    try:
        lb = balancer(_http(ports, backends), "--access-log", rx.target, "--access-log-format", "json")
        before = time.time()
        http_get("127.0.0.10", VIP, ports["vip"], "/a")
        http_get("127.0.0.11", VIP, ports["vip"], "/b")
        frames = [parse_rfc5424(f) for f in rx.wait(2)]
        assert len(frames) == 2
        for f in frames:
            assert (f.facility, f.severity, f.version) == (16, 6, 1)  # local0.info
            assert (f.app, f.procid, f.msgid, f.sd) == ("buddylb", str(lb.proc.pid), "access", "-")
            assert f.hostname == socket.gethostname()
            assert before - 1 <= f.timestamp.timestamp() <= time.time() + 1
        assert [json.loads(f.msg)["request"] for f in frames] == ["GET /a", "GET /b"]
        assert not lb.log.exists()  # the file option was overridden by syslog
    finally:
        rx.close()


def test_syslog_over_a_unix_socket_in_text_format(tmp_path, ports, backends, balancer):
    rx = SyslogReceiver(str(tmp_path / "log.sock"))
    try:
        lb = balancer(_http(ports, backends), "--access-log", rx.target)
        http_get("127.0.0.12", VIP, ports["vip"], "/u")
        (f,) = [parse_rfc5424(x) for x in rx.wait(1)]
        assert f.procid == str(lb.proc.pid) and f.msgid == "access"
        assert "127.0.0.12" in f.msg and '"GET /u"' in f.msg and "status=200" in f.msg
    finally:
        rx.close()


def test_syslog_target_forms_and_errors(tmp_path):
    assert parse_target("syslog").address == "/dev/log"
    assert parse_target("syslog:/run/rsyslog.sock").address == "/run/rsyslog.sock"
    assert parse_target("syslog:127.0.0.1:5514").address == ("127.0.0.1", 5514)
    assert parse_target("syslog:127.0.0.1").address == ("127.0.0.1", 514)
    assert parse_target("syslog:[::1]:5514").address[:2] == ("::1", 5514)
    for bad in ("syslog:127.0.0.1:99999", "syslog:host:port", "syslog:[::1]:x"):
        with pytest.raises(LbError, match="syslog:HOST:PORT"):
            parse_target(bad)
    with pytest.raises(LbError, match="is not a socket; start a syslog daemon"):
        AccessLog(f"syslog:{tmp_path / 'nothing'}")


def test_frame_is_cut_to_the_transport_limit_on_a_character_boundary():
    data = frame("é" * 5000, 0.0, "host name", os.getpid(), LIMIT_UDP)
    assert len(data) <= LIMIT_UDP
    parsed = parse_rfc5424(data)  # still valid UTF-8 and valid framing
    assert parsed.hostname == "hostname" and set(parsed.msg) == {"é"}
    assert parsed.timestamp.year == 1970


def test_shipped_logrotate_file_rotates_a_running_buddylb(tmp_path, ports, backends, balancer):
    """Real logrotate on the shipped file, with the two host-specific bits swapped: the log
    path, and systemctl (no systemd here) for a plain kill of the same signal."""
    logrotate = shutil.which("logrotate")
    if logrotate is None:
        pytest.skip("logrotate is not installed (apt-get install logrotate; .ci/run does)")
    text = (ROOT / "contrib" / "logrotate" / "buddylb").read_text()
    systemctl = "systemctl kill --signal=USR1 --kill-whom=main buddylb.service"
    assert "/var/log/buddylb/access.log {" in text and systemctl in text and "create 0640 buddylb adm" in text
    lb = balancer(_http(ports, backends))
    http_get("127.0.0.10", VIP, ports["vip"], "/before")
    assert wait_for(lambda: len(_lines(lb.log)) == 1, 5)
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text.replace("/var/log/buddylb/access.log", str(lb.log))
                    .replace(systemctl, f"kill -USR1 {lb.proc.pid}").replace("buddylb adm", "root root"))
    out = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rotated = lb.log.with_name("access.log.1")  # delaycompress: the newest rotation stays plain
    assert ["/before" in line for line in _lines(rotated)] == [True]
    assert (lb.log.stat().st_mode & 0o777) == 0o640  # logrotate's `create`
    http_get("127.0.0.11", VIP, ports["vip"], "/after")
    assert wait_for(lambda: len(_lines(lb.log)) == 1, 5), lb.stderr()
    assert "/after" in _lines(lb.log)[0] and len(_lines(rotated)) == 1
