"""The state of one parse: the Config being filled, the current context, the diagnostics.

Owns the file-level rules that no single section knows (SPEC §2): `context NAME`
switches the context that new objects join, objects before the first `context` line
belong to `Admin`; global lines (`sticky-store`, `timeout`, `trusted-proxy`) must come
before the first context or object; a name is defined once per kind in a context.
It never parses words (handlers do) and never validates cross-references (validate does).
"""

from __future__ import annotations

from typing import Mapping, Protocol

from buddylb.config.verdict import LineError
from buddylb.config.model import DEFAULT_CONTEXT, Config, Context, Diagnostic


class _Named(Protocol):
    line: int


class ParseSession:
    """Everything the section handlers share while one file is parsed."""

    def __init__(self, file: str):
        self.file = file
        self.config = Config(file=file)
        self.diagnostics: list[Diagnostic] = []
        self.current: str | None = None  # the context objects join; None: not chosen yet
        self.objects_from: int | None = None  # line of the first context or object
        self.once: dict[tuple[str, ...], int] = {}  # file-wide single-valued lines -> first line
        self.incomplete: set[int] = set()  # opener lines of objects with a broken line

    def error(self, line: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "error"))

    def warn(self, line: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "warning"))

    def context(self, line: int) -> Context:
        """The context a new object at `line` belongs to (`Admin` until a `context` line)."""
        if self.objects_from is None:
            self.objects_from = line
        if self.current is None:
            self.enter_context(DEFAULT_CONTEXT, line)
        assert self.current is not None
        return self.config.contexts[self.current]

    def enter_context(self, name: str, line: int) -> None:
        """`context NAME`: later objects join NAME; naming a context again re-opens it."""
        if self.objects_from is None:
            self.objects_from = line
        if name not in self.config.contexts:
            self.config.contexts[name] = Context(name=name, line=line)
        self.current = name

    def global_line(self, what: str) -> None:
        """SPEC §2: global lines come before the first context or object."""
        if self.objects_from is not None:
            raise LineError(
                f'"{what}" is a global setting and must come before the first context or object '
                f"(line {self.objects_from}); move it to the top of the file"
            )

    def once_per_file(self, key: tuple[str, ...], what: str, line: int, where: str = "") -> None:
        """A line that may appear once per file (or per context: `where` says which)."""
        first = self.once.get(key)
        if first is not None:
            raise LineError(
                f'"{what}" is repeated{where} (first on line {first}); it takes one value, '
                "keep one of the two lines"
            )
        self.once[key] = line


def claim_name(tables: Mapping[str, Mapping[str, _Named]], name: str, kind: str) -> None:
    """Refuse a second definition of `name` among the objects of one namespace.

    `tables` maps a description of each table sharing the namespace to the table, so a
    policy-map name is unique across load-balance and multi-match policy-maps."""
    for label, table in tables.items():
        first = table.get(name)
        if first is not None:
            raise LineError(
                f'{kind} "{name}" is already defined as {label} on line {first.line}; '
                "rename one of them or merge their lines into one block"
            )
