"""A handler's verdict on one configuration line: `LineError` and `keep`.

Owns only the exception the keyword handlers raise (grammar.py catches it and turns it
into a Diagnostic with file and line).  It sits below both `grammar` and `session` so
that neither has to import the other to raise or catch it (no import cycle).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


class LineError(Exception):
    """A handler's verdict on its line.  With `target`, the object was still created
    (its name was fine) and the block under the line is parsed into it."""

    def __init__(self, message: str, target: Any = None):
        super().__init__(message)
        self.target = target


@contextmanager
def keep(target: Any) -> Iterator[None]:
    """Within it, a LineError keeps `target`: the object exists and its block is parsed."""
    try:
        yield
    except LineError as exc:
        raise LineError(str(exc), target) from None
