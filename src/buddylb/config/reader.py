"""The mode reader: logical lines -> the handler of the sub-mode each line belongs to.

The ACE CLI reads a configuration by *mode*, not by indentation: a command that opens a
sub-mode (`rserver host`, `probe`, `class`, `interface vlan` ...) stays current until a
line arrives that is not one of its commands; that line closes it and is tried in the
enclosing mode, and so on up to the top level.  `exit` closes one mode, `end` all.  So
a flat paste and its indented form compile alike (SPEC §2, §2.4).  Indentation is still
honoured where a file has it: once a mode has a line indented deeper than its opener,
a later line at the opener's column or shallower closes it (this keeps `probe tcp X` at
the top level of an indented file from being read as a farm's `probe NAME`).

Theory of operation, per line:
1. close the modes the line's indentation closes (above);
2. find, innermost first, the open mode whose table has the line as a command (hint-only
   commands do not count); close the modes inside it and run the command there; a
   command with a sub-mode opens it;
3. a device sub-mode (`Block.swallow`) owns every deeper-indented line;
4. otherwise `description` and the like are taken where they stand (`ANYWHERE`), then a
   hint-only command may explain the mistake, else the line is an unknown command of the
   innermost mode.  The modes stay open: the next lines continue where they were.

A handler's `LineError` is reported; without a kept target the sub-mode it would have
opened is still entered, as a *dead* mode that silently consumes its own commands, so a
broken opener produces one error, not one per line under it (no cascades).  The object
of a mode with a broken line is marked incomplete for `validate` for the same reason.
It never knows what a command means (handlers do) and never prints.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable

from buddylb.config.grammar import Args, Block, Command, LineError
from buddylb.config.lexer import LogicalLine

if TYPE_CHECKING:
    from buddylb.config.session import ParseSession


_PROMPT = re.compile(r"[\w.-]+/[\w.-]+(\(config[\w-]*\))?#")
_NOTHING = Block("refused line", {}, 1)  # the sub-mode of a refused line that opens none


class Mode:
    """One open sub-mode: the line that opened it, its table and the object it fills.
    (A plain class with slots: one is made per object line, 40k for a 20k-member farm.)"""

    __slots__ = ("opener", "table", "target", "dead", "indented", "seen", "indent")

    def __init__(self, opener: LogicalLine, table: Block, target: Any, dead: bool = False) -> None:
        self.opener = opener
        self.table = table
        self.target = target
        self.dead = dead  # the opener was refused: consume its lines without running them
        self.indented = False  # a line deeper than the opener arrived: indentation is meaningful
        self.seen: dict[str, int] = {}  # single-valued attributes -> line
        self.indent = opener.indent  # read for every line: kept here


class Reader:
    """Feeds lines to handlers by mode; one instance reads one file."""

    def __init__(self, session: ParseSession, top: Block, anywhere: Block):
        self.session = session
        self.top = top
        self.anywhere = anywhere
        self.stack: list[Mode] = []
        self.top_seen: dict[str, int] = {}

    def read(self, lines: Iterable[LogicalLine]) -> None:
        feed = self.feed
        for line in lines:
            feed(line)

    def feed(self, line: LogicalLine) -> None:
        keys = line.keys
        if len(keys) == 1:
            if keys[0] == "exit":
                if self.stack:
                    self.stack.pop()
                return
            if keys[0] == "end":
                self.stack.clear()
                return
        if "/" in line.words[0] and _PROMPT.match(line.words[0]) and not line.quoted[0]:
            # `ACE-1/Admin# show running-config` pasted with its output
            self.session.ignore("unused", line.number, "CLI prompt")
            self.stack.clear()
            return
        stack = self.stack
        if stack and line.indent <= stack[-1].indent:
            self._close_by_indent(line)
        inner = stack[-1] if stack else None
        nested = inner is not None and line.indent > inner.indent
        if nested and inner.dead:  # type: ignore[union-attr]
            return  # indented under a refused line: that line was reported, once
        if nested and inner.table.swallow:  # type: ignore[union-attr]
            inner.indented = True  # type: ignore[union-attr]
            found = inner.table.lookup(line, hidden=False)  # type: ignore[union-attr]
            if found is None:
                self.session.ignore(_category(inner.target), line.number, " ".join(line.words[:2]))  # type: ignore[union-attr]
                return
            self._run(line, len(stack) - 1, *found)
            return
        for depth in range(len(stack) - 1, -2, -1):
            table = stack[depth].table if depth >= 0 else self.top
            found = table.lookup(line, hidden=False)
            if found is None:
                continue
            n, cmd = found
            if not (nested and cmd.device) and (cmd.claims is None or _claims(line, n, cmd)):
                del stack[depth + 1 :]
                if depth >= 0 and line.indent > stack[depth].indent:
                    stack[depth].indented = True
                self._run(line, depth, n, cmd)
                return
        self._stray(line)

    def _close_by_indent(self, line: LogicalLine) -> None:
        stack, indent = self.stack, line.indent
        while stack:
            mode = stack[-1]
            if indent < mode.indent or (indent == mode.indent and mode.indented):
                stack.pop()
            else:
                return

    def _run(self, line: LogicalLine, depth: int, n: int, cmd: Command) -> None:
        stack = self.stack
        block = cmd.block
        if depth >= 0:
            mode = stack[depth]
            if mode.dead:
                if block is not None:
                    stack.append(Mode(line, block, None, dead=True))
                return
            seen, parent, target = mode.seen, mode.opener, mode.target
        else:
            seen, parent, target = self.top_seen, None, self.session
        once = cmd.once
        if once is not None:
            first = seen.get(once)
            if first is not None:
                phrase = " ".join(line.words[:n]).lower()
                self._fail(
                    parent,
                    line.number,
                    f'"{phrase}" is repeated {where(parent)} (first on line {first}); '
                    "it takes one value, keep one of the two lines",
                )
                return
            seen[once] = line.number
        try:
            child = cmd.run(self.session, target, Args(line, n, cmd.syntax))
        except LineError as exc:
            self._fail(parent, line.number, str(exc))
            child = exc.target
            if child is None:
                stack.append(Mode(line, block or _NOTHING, None, dead=True))
                return
            self.session.incomplete.add(line.number)  # the object exists but may lack what the line said
        if block is not None:
            stack.append(Mode(line, block, child))

    def _stray(self, line: LogicalLine) -> None:
        """A line no open mode has as a command."""
        inner = self.stack[-1] if self.stack else None
        parent = inner.opener if inner is not None else None
        found = self.anywhere.lookup(line)
        if found is not None:
            n, cmd = found
            try:
                cmd.run(self.session, inner.target if inner is not None else self.session, Args(line, n, cmd.syntax))
            except LineError as exc:
                self._fail(parent, line.number, str(exc))
            return
        for depth in range(len(self.stack) - 1, -2, -1):
            table = self.stack[depth].table if depth >= 0 else self.top
            hint = table.lookup(line)
            if hint is not None:
                self._run(line, depth, *hint)
                return
        table = inner.table if inner is not None else self.top
        shown = " ".join(line.words[:3])
        self._fail(
            parent,
            line.number,
            f'"{shown}" is not a command {where(parent)}; fix the spelling, '
            f"or remove it ({table.title} takes: {table.choices()})",
        )

    def _fail(self, parent: LogicalLine | None, number: int, message: str) -> None:
        """Report an error on line `number`; the object of `parent` is now incomplete, so
        `validate` does not add "missing attribute" errors for what the bad line meant."""
        self.session.error(number, message)
        if parent is not None:
            self.session.incomplete.add(parent.number)


def _claims(line: LogicalLine, n: int, cmd: Command) -> bool:
    return cmd.claims is None or cmd.claims(tuple(w.lower() for w in line.words[n:]))


def where(parent: LogicalLine | None) -> str:
    if parent is None:
        return "at the top level"
    text = parent.text if len(parent.text) <= 60 else parent.text[:57] + "..."
    return f'under "{text}" (line {parent.number})'


def _category(target: Any) -> str:
    """The ignore category of a device sub-mode's object (`interface` or `device`)."""
    return getattr(target, "category", "device")
