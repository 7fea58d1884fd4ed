"""`buddylb demo --once` end to end: exit 0, a report that proves buddy sticky, no leftovers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import buddylb

SRC = str(Path(buddylb.__file__).resolve().parent.parent)
CLIENT = re.compile(r"^client (\S+)((?:\s+\w+: \S+ \(\w+\))+)")
VISIT = re.compile(r"(\w+): (\S+) \((\w+)\)")


def parse_sections(out: str) -> dict[str, list[str]]:
    """`== title ==` headings -> the lines under each (keyed by the title's first word)."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in out.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            current = line[3:-3].split()[0].rstrip(".")
            sections[current] = []
        else:
            sections[current].append(line)
    return sections


def walks(lines: list[str]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """`client A  farm: rserver (outcome) ...` lines -> [(A, [(farm, rserver, outcome), ...])]."""
    out = []
    for line in lines:
        m = CLIENT.match(line)
        if m:
            out.append((m.group(1), VISIT.findall(m.group(2))))
    return out


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "buddylb", "demo", "--once"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_demo_exits_zero_with_plain_text(demo):
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "\x1b[" not in demo.stdout  # no color when stdout is not a terminal
    assert "every client stayed on one physical server across its farms: yes" in demo.stdout


def test_every_cart_client_is_on_one_server_across_its_farms(demo):
    cart = walks(parse_sections(demo.stdout)["1"])
    assert len(cart) == 12 and {c for c, _ in cart} == {f"127.0.0.{n}" for n in range(11, 23)}
    for client, visits in cart:
        assert [(f, o) for f, _, o in visits] == [("http", "new"), ("decrypted", "buddy_hit")], client
        assert len({rs for _, rs, _ in visits}) == 1, (client, visits)
    assert {visits[0][1] for _, visits in cart} == {"lnx1", "lnx2"}  # both servers were used


def test_tiers_clients_reach_the_buddy_and_come_back(demo):
    group = {"lnx1": "blue", "lnx2": "blue", "lnx3": "red", "lnx4": "red", "db1": "blue", "db2": "red"}
    tiers = walks(parse_sections(demo.stdout)["2"])
    assert len(tiers) == 12
    for client, ((f1, web1, _), (f2, app, o2), (f3, web2, o3)) in tiers:
        assert (f1, f2, f3) == ("web", "app", "web")
        assert group[web1] == group[app] and web2 == web1 and (o2, o3) == ("buddy_hit", "buddy_hit"), client


def test_restick_moves_lnx1_clients_and_their_buddy_follows(demo):
    section = parse_sections(demo.stdout)["4"]
    moved = walks(section)
    cart = [(c, v) for c, v in moved if v[0][0] == "http"]
    assert cart, "\n".join(section)
    for client, visits in cart:
        assert visits == [("http", "lnx2", "restick"), ("decrypted", "lnx2", "buddy_hit")], client
    assert all(rs != "lnx1" for _, v in moved for _, rs, _ in v)
    assert any('{"inservice": true}' in line for line in section)  # put back afterwards


def test_prints_the_dashboard_address(demo):
    header = parse_sections(demo.stdout)[""]
    admin = next(re.search(r"admin API http://(\S+),", ln) for ln in header if "balancer pid" in ln).group(1)
    assert f"  dashboard: http://{admin}/  (buddy map, sticky database, drain preview; open it in a browser)" in header


def test_nothing_is_left_behind(demo):
    header = parse_sections(demo.stdout)[""]
    m = next(re.search(r"balancer pid (\d+),.* files in (\S+)", ln) for ln in header if "balancer pid" in ln)
    assert m is not None
    pid, workdir = int(m.group(1)), m.group(2)
    assert not Path(workdir).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    if Path("/proc").is_dir():
        assert processes_mentioning(workdir) == []


def test_embedded_config_is_clean_and_names_the_example_objects(tmp_path):
    from buddylb.config.parser import load_config
    from buddylb.core.compile import compile_config
    from buddylb.demo.certs import make_cert
    from buddylb.demo.config import CERT_STEM, VIP, DemoPorts, render_config

    ports = DemoPorts({"http": 8080, "decrypted": 8443, "web": 8081, "app": 9000}, 80, 443, 8000, 9001)
    make_cert(tmp_path, CERT_STEM, VIP)
    path = tmp_path / "buddylb.cfg"
    path.write_text(render_config(ports))
    config = load_config(path)
    assert config.warnings == []
    snap = compile_config(config)
    assert set(snap.contexts) == {"Admin", "tiers"}
    admin = snap.contexts["Admin"]
    assert set(admin.buddy_real_groups) == {"blue", "red"} and "alpha" in admin.scopes
    assert {(v.port, v.policy.http, v.tls is not None) for v in snap.vips.values()} == {
        (80, True, False), (443, True, True), (8000, True, False), (9001, False, False)}
