"""The README's quick-start commands work on a fresh clone, as written (issue 14)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.strip()]


def test_quick_start_check_commands_pass_from_the_clone() -> None:
    checks = [c for c in quick_start() if re.match(r"\.venv/bin/buddylb check ", c)]
    assert checks, "the quick start shows no `buddylb check` command"
    for command in checks:
        args = shlex.split(command)[1:]
        r = subprocess.run([sys.executable, "-m", "buddylb", *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, (command, r.stdout, r.stderr)
        assert ": OK (" in r.stdout, (command, r.stdout)


def test_every_example_named_in_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text()
    for name in set(re.findall(r"examples/[\w.-]+\.cfg", text)):
        assert (ROOT / name).is_file(), name
