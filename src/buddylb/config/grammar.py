"""The keyword tables: how a command is *found* in a sub-mode and how its words are read.

Each section registers its keywords in a `Block` table next to its handlers (STYLE:
"each section registers its keywords"); the longest registered keyword phrase wins;
keywords are case-insensitive and a quoted word is never a keyword.  `Args` consumes a
line's words with messages that name the value and the fix.  Which mode a line belongs
to (indentation and ACE's mode rules, SPEC §2.4) is `config.reader`'s business.

It never knows what a command means: handlers do, and they report problems by raising
`LineError` with a sentence that names the offending value and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from buddylb.config import units
from buddylb.config.lexer import SEQ, LogicalLine, key_of  # noqa: F401  (re-exported for the sections)
from buddylb.config.verdict import LineError, keep  # noqa: F401  (re-exported for the sections)

if TYPE_CHECKING:
    from buddylb.config.session import ParseSession

T = TypeVar("T")


Handler = Callable[["ParseSession", Any, "Args"], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """One registered command: its syntax (for messages), handler and optional sub-mode."""

    syntax: str
    run: Handler
    block: Block | None = None  # the sub-mode this command opens
    once: str | None = None  # key of a single-valued attribute (may not repeat in a block)
    hidden: bool = False  # only there to give a better hint; not listed as a choice
    device: bool = False  # an ACE device command: never claims a line indented into a mode
    # The ACE CLI tries a line in the enclosing mode when it does not *parse* in the
    # current one: `claims(words after the phrase, lower case)` says whether it could
    # (`probe tcp X` is not a farm's `probe NAME`).  None: any line with the phrase.
    claims: Callable[[tuple[str, ...]], bool] | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """A keyword table: phrase (lower-case words, `#` for a number) -> Command."""

    title: str
    commands: Mapping[tuple[str, ...], Command]
    longest: int = 1
    # A device sub-mode (SPEC §2.4): lines indented deeper than its opener that it does
    # not know are still its own (ignored with it), whatever they say.
    swallow: bool = False

    # phrases by their first keyword, longest first: a line is looked up by its first key
    # once, not by every length up to `longest` (a 20k-member farm is 100k lines)
    by_first: dict = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_first: dict[str, list[tuple[int, tuple[str, ...], Command]]] = {}
        for phrase, cmd in self.commands.items():
            by_first.setdefault(phrase[0], []).append((len(phrase), phrase, cmd))
        for cands in by_first.values():
            cands.sort(key=lambda c: -c[0])
        object.__setattr__(self, "by_first", {k: tuple(v) for k, v in by_first.items()})

    def lookup(self, line: LogicalLine, hidden: bool = True) -> tuple[int, Command] | None:
        """The longest phrase of this table that starts `line`; `hidden=False` skips the
        hint-only commands (a hint must not claim a line another mode owns)."""
        keys = line.keys  # the lexer's, once per line
        cands = self.by_first.get(keys[0])
        if cands is None:
            return None
        for n, phrase, cmd in cands:
            if (n == 1 or keys[:n] == phrase) and (hidden or not cmd.hidden):
                return n, cmd
        return None

    def choices(self) -> str:
        seen: list[str] = []
        for phrase, cmd in self.commands.items():
            text = " ".join("SEQ" if p == SEQ else p for p in phrase)
            if not cmd.hidden and not cmd.device and text not in seen:
                seen.append(text)
        return ", ".join(seen)


def one_word(rest: tuple[str, ...]) -> bool:
    """`claims` of a command that takes exactly one word (`probe NAME`)."""
    return len(rest) == 1


def farm_ref(rest: tuple[str, ...]) -> bool:
    """`claims` of `serverfarm F [backup F2]`: not the top-level `serverfarm host NAME`."""
    return len(rest) in (1, 3) and rest[0] != "host"


def block(title: str, *tables: Mapping[str, Command], swallow: bool = False) -> Block:
    """Build a Block from tables keyed by phrase strings (`"ip address"`)."""
    commands: dict[tuple[str, ...], Command] = {}
    for table in tables:
        for phrase, cmd in table.items():
            commands[tuple(phrase.split())] = cmd
    return Block(title, commands, max(len(p) for p in commands), swallow)


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
        if self._pos >= self._stop:
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
        text = self.word(what)
        if units.NAME_RE.fullmatch(text) is not None:  # the common case, without a closure per line
            return text
        try:
            return units.check_name(text, what)
        except ValueError as exc:
            raise LineError(f"{exc}") from None

    def token(self, what: str) -> str:
        return self.convert(what, lambda t: units.check_token(t, what))

    def integer(self, what: str, lo: int, hi: int) -> int:
        return self.convert(what, lambda t: units.parse_int(t, what, lo, hi))

    def port(self, what: str = "port") -> int:
        text = self.word(what)
        if text.isdigit() and text.isascii() and len(text) <= 5 and 0 < int(text) <= 65535:
            return int(text)  # the common case, without a closure per line
        try:
            return units.parse_port(text, what)
        except ValueError as exc:
            raise LineError(f"{exc}") from None

    def time(self, what: str, unit: units.TimeUnit) -> float:
        return self.convert(what, lambda t: units.parse_time(t, unit))

    def end(self) -> None:
        if self._pos < self._stop:
            extra = " ".join(self.line.words[self._pos : self._stop])
            raise LineError(
                f'"{extra}" is not expected at the end of "{self.line.text}"; write "{self.syntax}"'
            )
