"""Which of buddylb's modules run compiled: `BUDDYLB_PURE=1`, and never a stale extension.

Some modules are also built as C extensions from the same .py source (setup.py,
COMPILED; `make` rebuilds them).  Python prefers an extension over a source file of
the same name, so two things need a finder placed first on `sys.meta_path`:

- `BUDDYLB_PURE=1` loads the .py source of every buddylb module, so a test or a
  benchmark runs the uncompiled fallback from the same tree;
- an extension older than its .py (the source was edited, not yet rebuilt) is never
  used: the source is loaded instead, so a test always runs the code as written.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from typing import Sequence

_EXT = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _stale(directory: str) -> bool:
    """True when a compiled module of `directory` is older than its .py or .pxd.
    Compiled modules import each other's C types, so they are used all together or
    not at all."""
    for n in os.listdir(directory):
        if not n.endswith(_EXT):
            continue
        built = os.path.getmtime(os.path.join(directory, n))
        stem = os.path.join(directory, n.split(".", 1)[0])
        for src in (stem + ".py", stem + ".pxd"):
            if os.path.isfile(src) and os.path.getmtime(src) > built:
                return True
    return False


class PureFinder:
    """Answers for `buddylb.*` modules that have both a .py source and an extension."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        if not name.startswith("buddylb.") or not path:
            return None
        leaf = name.rpartition(".")[2]
        pure = os.environ.get("BUDDYLB_PURE") == "1"
        for directory in path:
            stem, search = os.path.join(directory, leaf), None
            if not os.path.isfile(stem + ".py") and os.path.isfile(os.path.join(stem, "__init__.py")):
                # a package whose __init__ is compiled too (core.predictors): the same rules
                directory, search = stem, [stem]
                stem = os.path.join(stem, "__init__")
            elif not os.path.isfile(stem + ".py"):
                continue
            if not any(os.path.isfile(stem + suffix) for suffix in _EXT):
                return None  # the normal finders load the source
            if pure or _stale(directory):
                return importlib.util.spec_from_file_location(name, stem + ".py", submodule_search_locations=search)
            return None
        return None


def install() -> None:
    if PureFinder not in sys.meta_path:
        sys.meta_path.insert(0, PureFinder)


def compiled(module: object) -> bool:
    """True when `module` was loaded from a C extension."""
    return str(getattr(module, "__file__", "")).endswith(_EXT)
