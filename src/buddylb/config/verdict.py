"""A handler's verdict on one configuration line: `LineError` and `keep`.

Owns only the exception the keyword handlers raise (grammar.py catches it and turns it
into a Diagnostic with file and line).  It sits below both `grammar` and `session` so
that neither has to import the other to raise or catch it (no import cycle).
"""
from __future__ import annotations

from typing import Any


class LineError(Exception):
    """A handler's verdict on its line.  With `target`, the object was still created
    (its name was fine) and the block under the line is parsed into it."""

    def __init__(self, message: str, target: Any = None):
        super().__init__(message)
        self.target = target


class keep:  # noqa: N801  (used as a function: `with keep(obj):`)
    """Within it, a LineError keeps `target`: the object exists and its block is parsed.

    A class, not a @contextmanager generator: it runs once per object line, 40k times for
    a 20k-member farm (issue 13 item 6), and a generator costs three times as much."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, LineError):
            raise LineError(str(exc), self.target) from None
