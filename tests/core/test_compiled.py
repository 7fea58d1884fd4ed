"""The compiled modules (setup.py COMPILED) and their uncompiled fallback (BUDDYLB_PURE=1).

The same .py sources run both ways; the table and decision suites must pass both ways,
so the fallback is run here in a child interpreter with BUDDYLB_PURE=1."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITES = ["tests/core/test_sticky.py", "tests/core/test_decide.py", "tests/property/test_compact_table.py",
          "tests/property/test_sticky_machine.py", "tests/property/test_explain.py"]
# core.predictors is a package whose __init__ is compiled too (decide cimports its choose)
WHERE = ("import buddylb.core.slots as a, buddylb.core.sticky as b, buddylb.core.decide as c, "
         "buddylb.core.predictors as d; print(a.__file__, b.__file__, c.__file__, d.__file__)")


def _child(code: list[str], pure: bool, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BUDDYLB_PURE"}
    if pure:
        env["BUDDYLB_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return subprocess.run([sys.executable, *code], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_pure_switch_loads_every_source():
    r = _child(["-c", WHERE], pure=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert all(f.endswith(".py") for f in r.stdout.split()), r.stdout


def test_uncompiled_fallback_passes_the_table_and_decision_suites():
    r = _child(["-m", "pytest", "-x", *SUITES], pure=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout


def test_built_modules_are_the_ones_imported():
    """A current compiled module is what imports; the source otherwise (never a stale one)."""
    r = _child(["-c", WHERE], pure=False, timeout=60)
    assert r.returncode == 0, r.stderr
    for loaded in r.stdout.split():
        path = Path(loaded)  # the module's name ends at the first dot of the file name, not of the path
        stem = path.with_name(path.name.split(".", 1)[0])
        built = [p for p in stem.parent.glob(stem.name + ".*.so")]
        current = bool(built) and all(p.stat().st_mtime >= stem.with_suffix(".py").stat().st_mtime for p in built)
        assert loaded.endswith(".so") == current, (loaded, built)
