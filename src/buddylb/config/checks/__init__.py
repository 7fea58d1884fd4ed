"""The cross-object rules of SPEC §2.3, one module per concern, run by `config.validate`.

Every check reads the model and adds diagnostics to a `Findings`; none changes the model
and none stops at the first problem.  Checks must tolerate half-filled objects: a line
the parser refused leaves its attribute at the default, and it was already reported.
"""

from __future__ import annotations

from buddylb.config.model import DEFAULT_CONTEXT, Context, Diagnostic


class Findings:
    """The diagnostics of one validation run."""

    def __init__(self, file: str, incomplete: frozenset[int] = frozenset()):
        self.file = file
        self.incomplete = incomplete  # opener lines of objects with a line the parser refused
        self.diagnostics: list[Diagnostic] = []

    def error(self, line: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "error", "config"))

    def missing(self, owner_line: int, line: int, message: str) -> None:
        """An error about something an object lacks; dropped when the object had a bad
        line (that line was reported and probably meant to provide it)."""
        if owner_line not in self.incomplete:
            self.error(line, message)

    def warn(self, line: int, message: str, category: str = "config") -> None:
        self.diagnostics.append(Diagnostic(self.file, line, message, "warning", category))


def in_context(ctx: Context) -> str:
    """` in context "X"` for messages, empty for the default context."""
    return "" if ctx.name == DEFAULT_CONTEXT else f' in context "{ctx.name}"'
