"""The keyword engine: logical lines -> a tree of blocks -> handlers from keyword tables.

Owns how a command is *found* and how its sub-mode is walked (SPEC §2): a command owns
the following lines indented deeper than it; each section registers its keywords in a
`Block` table next to its handlers (STYLE: "each section registers its keywords"); the
longest registered keyword phrase wins; keywords are case-insensitive and a quoted word
is never a keyword.  It also owns the rules every block shares: a single-valued
attribute may not repeat, unknown commands are errors, the ACE commands of SPEC §2.3 are
accepted with a warning at any level (with their sub-lines), and a broken line is
reported and skipped with its children (unless its handler kept the object it named,
see `keep`); the object of a block with a broken line is marked incomplete so that
`validate` does not also report it as missing what the line said: no cascades.

It never knows what a command means: handlers do, and they report problems by raising
`LineError` with a sentence that names the offending value and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, TypeVar

from buddylb.config import units
from buddylb.config.lexer import LogicalLine
from buddylb.config.verdict import LineError, keep  # noqa: F401  (re-exported for the sections)

if TYPE_CHECKING:
    from buddylb.config.session import ParseSession

T = TypeVar("T")
SEQ = "#"  # phrase slot that matches a sequence number (`2 match ...`)
_NEVER = "\x00"  # the key of a quoted word: matches no keyword


Handler = Callable[["ParseSession", Any, "Args"], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """One registered command: its syntax (for messages), handler and optional sub-mode."""

    syntax: str
    run: Handler
    block: Block | None = None  # the sub-mode this command opens
    once: str | None = None  # key of a single-valued attribute (may not repeat in a block)
    hidden: bool = False  # only there to give a better hint; not listed as a choice


@dataclass(frozen=True, slots=True)
class Block:
    """A keyword table: phrase (lower-case words, `#` for a number) -> Command."""

    title: str
    commands: Mapping[tuple[str, ...], Command]
    longest: int = 1

    def lookup(self, line: LogicalLine) -> tuple[int, Command] | None:
        keys = [_key(w, q) for w, q in zip(line.words, line.quoted)]
        for n in range(min(self.longest, len(keys)), 0, -1):
            cmd = self.commands.get(tuple(keys[:n]))
            if cmd is not None:
                return n, cmd
        return None

    def choices(self) -> str:
        seen: list[str] = []
        for phrase, cmd in self.commands.items():
            text = " ".join("SEQ" if p == SEQ else p for p in phrase)
            if not cmd.hidden and text not in seen:
                seen.append(text)
        return ", ".join(seen)


def block(title: str, *tables: Mapping[str, Command]) -> Block:
    """Build a Block from tables keyed by phrase strings (`"ip address"`)."""
    commands: dict[tuple[str, ...], Command] = {}
    for table in tables:
        for phrase, cmd in table.items():
            commands[tuple(phrase.split())] = cmd
    return Block(title, commands, max(len(p) for p in commands))


def _key(word: str, quoted: bool) -> str:
    if quoted:
        return _NEVER
    if word.isascii() and word.isdigit():
        return SEQ
    return word.lower()


class Args:
    """The words of one line after its command phrase, consumed left to right."""

    __slots__ = ("line", "syntax", "_pos", "_stop")

    def __init__(self, line: LogicalLine, start: int, syntax: str):
        self.line = line
        self.syntax = syntax
        self._pos = start
        self._stop = len(line.words)

    @property
    def number(self) -> int:
        return self.line.number

    def more(self) -> bool:
        return self._pos < self._stop

    def remaining(self) -> int:
        return self._stop - self._pos

    def peek(self) -> str | None:
        """The next word as a keyword (lower case), or None if quoted or absent."""
        if not self.more() or self.line.quoted[self._pos]:
            return None
        return self.line.words[self._pos].lower()

    def word(self, what: str) -> str:
        if not self.more():
            raise LineError(f'"{self.line.text}" is missing the {what}; write "{self.syntax}"')
        value = self.line.words[self._pos]
        self._pos += 1
        return value

    def last(self, what: str) -> str:
        """Take the final word (names that end a line: `sticky ... NAME`)."""
        if not self.more():
            raise LineError(f'"{self.line.text}" is missing the {what}; write "{self.syntax}"')
        self._stop -= 1
        return self.line.words[self._stop]

    def last_name(self, what: str) -> str:
        text = self.last(what)
        try:
            return units.check_name(text, what)
        except ValueError as exc:
            raise LineError(f"{exc}") from None

    def accept(self, *choices: str) -> str | None:
        """Consume the next word if it is one of the keywords `choices`."""
        key = self.peek()
        if key is not None and key in choices:
            self._pos += 1
            return key
        return None

    def keyword(self, what: str, choices: Sequence[str]) -> str:
        if not self.more():
            raise LineError(
                f'"{self.line.text}" is missing the {what} ({" | ".join(choices)}); write "{self.syntax}"'
            )
        got = self.accept(*choices)
        if got is None:
            raise LineError(
                f'{what} "{self.line.words[self._pos]}" is not one of {", ".join(choices)}; '
                f'write "{self.syntax}"'
            )
        return got

    def convert(self, what: str, parse: Callable[[str], T]) -> T:
        text = self.word(what)
        try:
            return parse(text)
        except ValueError as exc:
            raise LineError(f"{exc}") from None

    def name(self, what: str) -> str:
        return self.convert(what, lambda t: units.check_name(t, what))

    def token(self, what: str) -> str:
        return self.convert(what, lambda t: units.check_token(t, what))

    def integer(self, what: str, lo: int, hi: int) -> int:
        return self.convert(what, lambda t: units.parse_int(t, what, lo, hi))

    def port(self, what: str = "port") -> int:
        return self.convert(what, lambda t: units.parse_port(t, what))

    def time(self, what: str, unit: units.TimeUnit) -> float:
        return self.convert(what, lambda t: units.parse_time(t, unit))

    def end(self) -> None:
        if self.more():
            extra = " ".join(self.line.words[self._pos : self._stop])
            raise LineError(
                f'"{extra}" is not expected at the end of "{self.line.text}"; write "{self.syntax}"'
            )


@dataclass(slots=True)
class Node:
    """A line and the lines it owns (indented deeper, SPEC §2)."""

    line: LogicalLine
    children: list[Node] = field(default_factory=list)

    def count(self) -> int:
        return sum(1 + c.count() for c in self.children)


def build_tree(lines: Iterable[LogicalLine]) -> list[Node]:
    """Group lines by indentation: each line owns the following deeper lines."""
    roots: list[Node] = []
    stack: list[Node] = []
    for line in lines:
        node = Node(line)
        while stack and stack[-1].line.indent >= line.indent:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


# SPEC §2.3: ACE commands that buddylb does not need; accepted anywhere with a warning.
ACE_IGNORED: tuple[tuple[str, ...], ...] = (
    ("description",),
    ("loadbalance", "vip", "icmp-reply"),
    ("nat", "dynamic"),
    ("interface",),
    ("access-group",),
    ("access-list",),
    ("nat-pool",),
)


def _ace_ignored(line: LogicalLine) -> tuple[str, ...] | None:
    keys = tuple(_key(w, q) for w, q in zip(line.words, line.quoted))
    for phrase in ACE_IGNORED:
        if keys[: len(phrase)] == phrase:
            return phrase
    return None


def run_block(
    session: ParseSession, nodes: list[Node], table: Block, target: Any, parent: LogicalLine | None
) -> None:
    """Dispatch each node of one block to the handler its keywords select."""
    seen: dict[str, int] = {}
    for node in nodes:
        _run_node(session, node, table, target, parent, seen)


def _where(table: Block, parent: LogicalLine | None) -> str:
    if parent is None:
        return "at the top level"
    text = parent.text if len(parent.text) <= 60 else parent.text[:57] + "..."
    return f'under "{text}" (line {parent.number})'


def _run_node(
    session: ParseSession,
    node: Node,
    table: Block,
    target: Any,
    parent: LogicalLine | None,
    seen: dict[str, int],
) -> None:
    line = node.line
    found = table.lookup(line)
    if found is None:
        _unknown(session, node, table, parent)
        return
    n, cmd = found
    phrase = " ".join(line.words[:n]).lower()
    if cmd.once is not None:
        first = seen.get(cmd.once)
        if first is not None:
            _fail(
                session,
                parent,
                line.number,
                f'"{phrase}" is repeated {_where(table, parent)} (first on line {first}); '
                "it takes one value, keep one of the two lines",
            )
            return
        seen[cmd.once] = line.number
    try:
        child = cmd.run(session, target, Args(line, n, cmd.syntax))
    except LineError as exc:
        _fail(session, parent, line.number, str(exc))
        child = exc.target
        if child is None:
            return  # the block under a broken line is skipped: no cascading errors
        session.incomplete.add(line.number)  # its object exists but may lack what the line said
    if cmd.block is not None:
        run_block(session, node.children, cmd.block, child, line)
    elif node.children:
        first_child = node.children[0].line
        _fail(
            session,
            parent,
            first_child.number,
            f'"{first_child.text}" is indented under "{phrase}" (line {line.number}), which opens no block; '
            "indent it like its neighbours or remove it",
        )


def _unknown(session: ParseSession, node: Node, table: Block, parent: LogicalLine | None) -> None:
    line = node.line
    ignored = _ace_ignored(line)
    if ignored is not None:
        subs = node.count()
        tail = f" with its {subs} indented line{'s' if subs != 1 else ''}" if subs else ""
        note = ""
        if any(c.line.words[0].lower() == "service-policy" for c in node.children):
            note = '; its "service-policy" line is ignored too, write "service-policy input NAME" at the top level'
        session.warn(
            line.number,
            f'"{" ".join(ignored)}" is an ACE command buddylb does not need; it is ignored{tail}{note}; '
            "remove it to silence this warning",
        )
        return
    shown = " ".join(line.words[:3])
    _fail(
        session,
        parent,
        line.number,
        f'"{shown}" is not a command {_where(table, parent)}; fix the spelling or indentation, '
        f"or remove it ({table.title} takes: {table.choices()})",
    )


def _fail(session: ParseSession, parent: LogicalLine | None, number: int, message: str) -> None:
    """Report an error on line `number`; the object of `parent` is now incomplete, so
    `validate` does not add "missing attribute" errors for what the bad line meant."""
    session.error(number, message)
    if parent is not None:
        session.incomplete.add(parent.number)
