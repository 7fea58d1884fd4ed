"""`buddylb check` on ACE files (SPEC §2.3): --json on success and failure, --ace-report,
and the per-VIP line that says what each VIP became and why."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from buddylb.cli import main

ACE_FILE = """\
hostname ACE-1
logging enable
logging buffered 4
rserver host a
  ip address 127.0.1.1
  inservice
rserver host unused
  ip address 127.0.1.2
serverfarm host web
  rserver a 8080
    inservice
sticky http-cookie SID ck
  serverfarm web
  replicate sticky
class-map match-all VIP
  2 match virtual-address 127.0.0.100 tcp eq www
policy-map type loadbalance first-match LB
  class class-default
    sticky-serverfarm ck
policy-map multi-match PM
  class VIP
    loadbalance vip inservice
    loadbalance policy LB
    inspect http
interface vlan 100
  ip address 10.0.0.1 255.255.255.0
  service-policy input PM
"""


def run(tmp_path: Path, text: str, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "ace.cfg"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", str(path), *options])
    return result.exit_code, result.stdout, result.stderr


def test_check_says_what_each_vip_became(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, ACE_FILE)
    assert code == 0, err
    assert 'VIP 127.0.0.100:80 (Admin, class VIP): L7 - default policy type; class "class-default" uses http-cookie' in out
    assert "OK (1 context(s), 1 VIP(s), 4 warning(s))" in out
    assert len(err.splitlines()) == 4  # one line per kind, not one per ignored line


def test_check_json_on_success_lists_every_diagnostic(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, ACE_FILE, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["valid"] is True and doc["errors"] == 0
    kinds = {(d["line"], d["category"]) for d in doc["diagnostics"]}
    assert kinds == {(1, "device"), (14, "mapping"), (24, "mapping"), (26, "interface")}
    for d in doc["diagnostics"]:
        assert set(d) == {"file", "line", "severity", "category", "message", "fix"} and d["fix"]
    assert [(v["vip"], v["type"]) for v in doc["vips"]] == [("127.0.0.100:80", "L7")]
    assert doc["config"]["vips"][0]["http"] is True


def test_check_json_on_failure(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, ACE_FILE + "serverfarm host broken\n  rserver nobody 80\n", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["valid"] is False and doc["errors"] == 1 and "config" not in doc
    (error,) = [d for d in doc["diagnostics"] if d["severity"] == "error"]
    assert error["line"] == 29 and error["category"] == "config" and 'rserver host nobody' in error["fix"]
    assert any(d["category"] == "device" for d in doc["diagnostics"])  # warnings are there too


def test_check_json_on_syntax_error(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "rserver host a\n  weight 500\n", "--json")
    doc = json.loads(out)
    assert code == 1
    (error,) = [d for d in doc["diagnostics"] if d["severity"] == "error" and d["line"] == 2]
    assert error["category"] == "syntax" and "weight 500 is out of range" in error["message"]


def test_ace_report(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, ACE_FILE, "--ace-report")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isdigit()}
    assert "ignored" in rows["1"] and "hostname" in rows["1"] and "device" in rows["1"]
    assert "ignored" in rows["2"] and "(2 lines)" in rows["2"]
    assert "used" in rows["4"] and "in serverfarm web" in rows["4"]
    assert "ignored" in rows["7"] and "not reached from an active service-policy" in rows["7"]
    assert "mapped" in rows["14"] and "stays in this buddylb" in rows["14"]
    assert "mapped" in rows["17"] and "as an L7 (HTTP) proxy" in rows["17"]
    assert "unsupported" in rows["24"] and "inspect" in rows["24"]
    assert "mapped" in rows["25"] and "service-policy input PM" in rows["25"]
    code, out, _ = run(tmp_path, ACE_FILE, "--ace-report", "--json")
    report = json.loads(out)["ace_report"]
    assert {r["verdict"] for r in report} == {"used", "mapped", "ignored", "unsupported"}


def test_check_shows_every_timeout_with_its_default_or_the_files_value(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, ACE_FILE)
    assert code == 0, err
    assert "tunnel 1h" in out and "client 30s" in out and "drain 30s" in out  # SPEC §5 defaults
    code, out, err = run(tmp_path, "timeout tunnel 90\ntimeout client 1500ms\n" + ACE_FILE)
    assert code == 0, err
    assert "tunnel 90s" in out and "client 1.5s" in out
    code, out, _ = run(tmp_path, "timeout tunnel 2h\n" + ACE_FILE, "--json")
    assert json.loads(out)["config"]["timeouts_s"]["tunnel"] == 7200
