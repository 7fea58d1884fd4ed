"""Which implementation of the HTTP head modules is loaded: compiled (Cython, pure-Python
mode; setup.py COMPILED_HTTP) or the `.py` source. `make test` runs the suite on the
compiled modules and tests/http + tests/io again with BUDDYLB_PURE=1; this test asserts
the implementation each mode loads (`buddylb._pure` is the finder that decides)."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from buddylb import _pure

MODULES = ("buddylb.http.head", "buddylb.http.framing", "buddylb.http.request", "buddylb.http.response")
REPO = Path(__file__).resolve().parents[2]
WHERE = ("import importlib, json; print(json.dumps({m: importlib.import_module(m).__file__ for m in %r}))"
         % (MODULES,))


def _current_build(source: Path) -> bool:
    built = list(source.parent.glob(source.stem + ".*.so"))
    return bool(built) and not _pure._stale(str(source.parent))


def test_this_process_loads_what_the_mode_says() -> None:
    for name in MODULES:
        module = importlib.import_module(name)
        source = Path(module.__file__).with_name(name.rpartition(".")[2] + ".py")
        expect = os.environ.get("BUDDYLB_PURE") != "1" and _current_build(source)
        assert _pure.compiled(module) is expect, (name, module.__file__)
    from buddylb.http import head
    assert head.COMPILED is _pure.compiled(head)


def test_pure_switch_loads_every_source_in_a_fresh_process() -> None:
    env = {**os.environ, "BUDDYLB_PURE": "1", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", WHERE], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert all(path.endswith(".py") for path in json.loads(out).values())
