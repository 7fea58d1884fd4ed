"""`user NAME` / `group NAME` as configuration (SPEC §2.1): parsed as global lines, looked
up by `check` (a warning) and by `run` (an error), without needing root."""
from __future__ import annotations

import subprocess
import sys

from buddylb.config.parser import load_config
from buddylb.errors import ConfigError
from buddylb.service.privileges import resolve
from tests.e2e.configs import farm, hosts, service, vip_policy

BODY = hosts("lnx1") + farm("app", [("lnx1", 8080, None)]) + service(vip_policy("v", 8081, "app", sticky=False))


def _check(tmp_path, text: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(text)
    return subprocess.run([sys.executable, "-m", "buddylb", "check", str(cfg)], capture_output=True, text=True,
                          timeout=60)


def test_user_and_group_are_global_lines(tmp_path):
    cfg = tmp_path / "lb.cfg"
    cfg.write_text("user nobody\ngroup nogroup\n" + BODY)
    config = load_config(cfg)
    assert (config.user.name, config.user.line, config.group.name, config.group.line) == ("nobody", 1, "nogroup", 2)
    cfg.write_text("user nobody\nuser daemon\n" + BODY + "group nogroup\n")
    try:
        load_config(cfg)
        raise AssertionError("accepted")
    except ConfigError as exc:
        text = str(exc)
    assert f"{cfg}:2: error: \"user\" is repeated (first on line 1)" in text
    assert "\"group\" is a global setting and must come before the first context or object" in text


def test_check_warns_about_a_user_this_host_lacks(tmp_path):
    out = _check(tmp_path, "user no-such-user-buddylb\n" + BODY)
    assert out.returncode == 0, out.stderr
    assert "lb.cfg:1: warning: user 'no-such-user-buddylb' does not exist on this host" in out.stderr
    assert "1 warning(s)" in out.stdout
    out = _check(tmp_path, "user nobody\n" + BODY)
    assert out.returncode == 0 and "warning" not in out.stderr and "0 warning(s)" in out.stdout


def test_resolve_uses_the_primary_group_unless_told():
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    who = resolve("nobody", None)
    assert (who.uid, who.gid, who.group) == (nobody.pw_uid, nobody.pw_gid, grp.getgrgid(nobody.pw_gid).gr_name)
    root_group = grp.getgrgid(0).gr_name
    assert resolve("nobody", root_group).gid == 0
    only_group = resolve(None, root_group)
    assert only_group.uid is None and only_group.user is None
    assert resolve(None, None) is None
