"""The state of one parse: the Config being filled, the current context, the diagnostics.

Owns the file-level rules that no single section knows (SPEC §2): `context NAME`
switches the context that new objects join, objects before the first `context` line
belong to `Admin`; global lines (`sticky-store`, `timeout`, `trusted-proxy`) must come
before the first context or object; a name is defined once per kind in a context.
It also collects what an ACE file says that buddylb does not use (SPEC §2.3, §2.4): each
ignored line is recorded with its category and turned into ONE warning per category at
the end (`ignored_warnings`), so an Admin context's device commands make one line on the
screen, not a wall; the full record feeds `check --ace-report`.
It never parses words (handlers do) and never validates cross-references (validate does).
"""

from __future__ import annotations

from typing import Mapping, Protocol

from buddylb.config.verdict import LineError
from buddylb.config.model import DEFAULT_CONTEXT, Config, Context, Diagnostic, Ignored


class _Named(Protocol):
    line: int


# The warning sentence of each ignore category (SPEC §2.3: one warning per kind).
CATEGORIES: dict[str, str] = {
    "device": "device and context-administration commands, not used by buddylb",
    "interface": 'interface lines other than "service-policy input" and "access-group input", not used by buddylb',
    "unused": "ACE commands buddylb does not need",
}


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
        self.ignored: list[Ignored] = self.config.ignored  # lines accepted and not used, in file order
        self.mapped: dict[str, tuple[int, str, int]] = {}  # kind -> (first line, message, count)

    def error(self, line: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "error"))

    def warn(self, line: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "warning"))

    def ignore(self, category: str, line: int, phrase: str) -> None:
        """Record a line accepted without effect; one warning per category at the end."""
        self.ignored.append(Ignored(category, line, phrase))

    def mapping(self, kind: str, line: int, message: str, verdict: str = "mapping") -> None:
        """A mapping that changes meaning, or an ACE feature buddylb does not do
        (`verdict="unsupported"`), SPEC §2.3: one warning per kind, on its first line."""
        first = self.mapped.get(kind)
        self.mapped[kind] = (line, message, 1) if first is None else (first[0], first[1], first[2] + 1)
        self.ignored.append(Ignored(verdict, line, kind, message))

    def ignored_warnings(self) -> list[Diagnostic]:
        """The summary warnings: one per ignore category and one per mapping kind."""
        out: list[Diagnostic] = []
        for category, sentence in CATEGORIES.items():
            rows = [i for i in self.ignored if i.category == category]
            if rows:
                text = f"{sentence}: {_summary(rows)}; buddylb ignores them, remove them to silence this warning"
                out.append(Diagnostic(self.file, rows[0].line, text, "warning", category))
        for first, message, count in self.mapped.values():
            more = f" (and {count - 1} more line{'s' if count > 2 else ''} like it)" if count > 1 else ""
            out.append(Diagnostic(self.file, first, message + more, "warning", "mapping"))
        return out

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


def _summary(rows: list[Ignored], shown: int = 6) -> str:
    """`hostname (line 1), logging (lines 3, 4, 9) and 2 more`: grouped by first words."""
    by_phrase: dict[str, list[int]] = {}
    for row in rows:
        by_phrase.setdefault(row.phrase, []).append(row.line)
    parts = []
    for phrase, lines in list(by_phrase.items())[:shown]:
        nums = ", ".join(str(n) for n in lines[:4]) + (", ..." if len(lines) > 4 else "")
        parts.append(f'"{phrase}" (line{"s" if len(lines) > 1 else ""} {nums})')
    rest = len(by_phrase) - shown
    tail = f" and {rest} more kind{'s' if rest > 1 else ''}" if rest > 0 else ""
    return f"{len(rows)} line{'s' if len(rows) != 1 else ''}: " + ", ".join(parts) + tail


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
