"""Admin API access (SPEC §4): loopback without a token; any other address needs one."""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.admin.support import SHOP, Shop, run_cli, running_shop, shop_ports
from tests.support.net import free_port

TOKEN = "s3cret-admin-token-0123456789"


def test_loopback_without_token(shop: Shop) -> None:
    assert shop.lb.api("/info")["ok"] is True
    r = shop.cli("show", "stats", "sticky")
    assert r.returncode == 0 and r.stdout.startswith("sticky statistics, context Admin")


def test_run_refuses_non_loopback_admin_without_token_file(tmp_path: Path) -> None:
    cfg = tmp_path / "buddylb.cfg"
    cfg.write_text(SHOP.format(lnx2_weight="", **shop_ports()))
    admin = f"0.0.0.0:{free_port('0.0.0.0')}"
    try:
        r = run_cli("run", str(cfg), "--admin", admin, "--access-log", "off", timeout=15)
    except subprocess.TimeoutExpired:  # it started serving: run_cli's timeout has killed it
        pytest.fail("buddylb run served a non-loopback admin API without a token")
    assert r.returncode != 0
    assert f"admin API on non-loopback address {admin} needs --admin-token-file" in r.stderr


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Shop, Path]]:
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKEN + "\n")
    with running_shop(tmp_path, args=["--admin-token-file", str(token_file)]) as shop:
        yield shop, token_file


def _raw(shop: Shop, path: str, token: str | None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{shop.lb.admin}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_required_when_configured(guarded) -> None:
    shop, token_file = guarded
    assert _raw(shop, "/show/stats-sticky", None) == (401, {"error": "missing or wrong admin token"})
    assert _raw(shop, "/show/stats-sticky", "wrong-token-wrong-token")[0] == 401
    assert _raw(shop, "/metrics", None)[0] == 401
    status, reply = _raw(shop, "/show/stats-sticky", TOKEN)
    assert status == 200 and reply["ok"] is True


def test_cli_with_and_without_token(guarded, tmp_path: Path) -> None:
    shop, token_file = guarded
    r = shop.cli("show", "rserver")
    assert r.returncode == 4 and r.stdout == ""
    assert r.stderr.strip() == (f"buddylb: admin token rejected by {shop.lb.admin}: none was given; "
                                "pass --token-file PATH or set BUDDYLB_ADMIN_TOKEN")
    r = shop.cli("show", "rserver", env={"BUDDYLB_ADMIN_TOKEN": "wrong-token-wrong-token"})
    assert r.returncode == 4 and "admin token rejected" in r.stderr and "BUDDYLB_ADMIN_TOKEN" in r.stderr
    wrong = tmp_path / "wrong.token"
    wrong.write_text("0123456789abcdef-not-it\n")
    r = shop.cli("show", "rserver", "--token-file", str(wrong))
    assert r.returncode == 4 and "admin token rejected" in r.stderr

    r = shop.cli("show", "rserver", "--token-file", str(token_file), "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 3
    r = shop.cli("show", "rserver", env={"BUDDYLB_ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0 and "lnx1" in r.stdout
    r = shop.cli("reload", "--token-file", str(token_file))
    assert r.returncode == 0 and "generation 2" in r.stdout


def test_cli_token_file_unreadable(guarded, tmp_path: Path) -> None:
    shop, _ = guarded
    r = shop.cli("show", "rserver", "--token-file", str(tmp_path / "missing.token"))
    assert r.returncode == 2 and "cannot read admin token file" in r.stderr
