"""The lexer: configuration text -> logical lines of words with their indentation (SPEC §2).

Owns the character-level rules of the file and nothing above them:
- UTF-8 (a leading BOM is dropped), LF or CRLF line ends; other control characters are
  refused line by line;
- indentation is the column of the first word; a tab advances to the next multiple of 8
  (the tab stops every editor shows);
- a line whose first non-blank character is `!` or `#` is a comment, and so is the rest
  of a line from a ` !` or ` #` (blank before it) outside double quotes;
- a double-quoted word may hold blanks, `!` and `#`; inside it `\\"` is a quote and
  `\\\\` a backslash, any other backslash is kept as written (regexes stay readable).
It never interprets a word: keywords and names are the parser's business.  A bad line
becomes a Diagnostic and is dropped; lexing always continues with the next line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buddylb.config.model import Diagnostic

TAB_STOP = 8
SEQ = "#"  # the key of a number: phrase slot of a sequence number (`2 match ...`)
_NEVER = "\x00"  # the key of a quoted word: matches no keyword
_BLANKS = " \t"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_UNQUOTED = tuple((False,) * n for n in range(16))  # `quoted` of a line without quotes, by word count
_PLAIN_RE = re.compile(r"[^\t\"!#\x00-\x08\x0a-\x1f\x7f]*")


@dataclass(slots=True)
class LogicalLine:
    """One command line: its 1-based number, indentation column and words.

    Not frozen: a frozen dataclass sets each field through object.__setattr__, and a
    20k-member farm is 100k lines (issue 13 item 6). Nothing changes a line once lexed."""

    number: int
    indent: int
    words: tuple[str, ...]
    quoted: tuple[bool, ...]  # per word: written in double quotes (never a keyword)
    # per word, as a keyword (`keys_of`): computed once here, read by every mode's table
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def text(self) -> str:
        """The words re-joined, for messages."""
        return " ".join(f'"{w}"' if q else w for w, q in zip(self.words, self.quoted))


class _LexError(Exception):
    pass


def decode_source(data: bytes, file: str) -> tuple[str, list[Diagnostic]]:
    """Bytes -> text; every line that is not valid UTF-8 gets a diagnostic (SPEC §2)."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    diagnostics: list[Diagnostic] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            diagnostics.append(
                Diagnostic(
                    file, number, f"byte {exc.start + 1} of this line is not UTF-8; save the file as UTF-8"
                )
            )
    return data.decode("utf-8", errors="replace"), diagnostics


def lex(text: str, file: str = "<config>") -> tuple[list[LogicalLine], list[Diagnostic]]:
    """Split `text` into logical lines; blank and comment lines are dropped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[LogicalLine] = []
    diagnostics: list[Diagnostic] = []
    plain = _PLAIN_RE.fullmatch
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw.isascii() and plain(raw) is not None:
            # The common line, inline (a 20k-member farm is 100k lines, issue 13 item 6):
            # ASCII without tab, quote, comment or control character, so str.split()
            # splits at spaces only and every word is a plain keyword or value.
            words = raw.split()
            if words:
                low = words if raw.islower() else raw.lower().split()
                n = len(words)
                lines.append(LogicalLine(number, len(raw) - len(raw.lstrip(" ")), tuple(words),
                                         _UNQUOTED[n] if n < len(_UNQUOTED) else (False,) * n,
                                         tuple([SEQ if w.isdigit() else w for w in low])))
            continue
        try:
            line = _lex_line(number, raw)
        except _LexError as exc:
            diagnostics.append(Diagnostic(file, number, str(exc)))
            continue
        if line is not None:
            lines.append(line)
    return lines, diagnostics


def _lex_line(number: int, raw: str) -> LogicalLine | None:
    if _PLAIN_RE.fullmatch(raw) is not None:
        # no tab, quote, comment or control character, but not ASCII: split at spaces only
        # (str.split() would split at U+00A0 and other Unicode blanks)
        words = tuple([w for w in raw.split(" ") if w])
        if not words:
            return None
        keys = tuple([key_of(w, False) for w in words])
        return LogicalLine(number, len(raw) - len(raw.lstrip(" ")), words, (False,) * len(words), keys)
    indent = 0
    i = 0
    while i < len(raw) and raw[i] in _BLANKS:
        indent = (indent // TAB_STOP + 1) * TAB_STOP if raw[i] == "\t" else indent + 1
        i += 1
    words: list[str] = []
    quoted: list[bool] = []
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch in _BLANKS:
            i += 1
        elif ch in "!#" and (i == 0 or raw[i - 1] in _BLANKS):
            break  # comment to the end of the line
        elif ch == '"':
            word, i = _quoted_word(raw, i)
            words.append(word)
            quoted.append(True)
        else:
            start = i
            while i < n and raw[i] not in _BLANKS:
                i += 1
            words.append(raw[start:i])
            quoted.append(False)
    if not words:
        return None
    for word in words:
        bad = _CONTROL_RE.search(word)
        if bad is not None:
            raise _LexError(
                f"this line contains the control character U+{ord(bad.group()):04X}; remove it "
                "(lines end with LF or CRLF, values with blanks go in double quotes)"
            )
    return LogicalLine(number, indent, tuple(words), tuple(quoted),
                       tuple([key_of(w, q) for w, q in zip(words, quoted)]))


def key_of(word: str, quoted: bool) -> str:
    """A word as a keyword: lower case; SEQ for a number; never a keyword when quoted."""
    if quoted:
        return _NEVER
    if word.isascii() and word.isdigit():
        return SEQ
    return word.lower()


def _quoted_word(raw: str, start: int) -> tuple[str, int]:
    """The word of the quote opening at `start`, and the index after its closing quote."""
    out: list[str] = []
    i = start + 1
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\" and i + 1 < n and raw[i + 1] in '"\\':
            out.append(raw[i + 1])
            i += 2
        elif ch == '"':
            i += 1
            if i < n and raw[i] not in _BLANKS:
                raise _LexError(
                    f'text follows the closing quote of "{"".join(out)}" without a blank; '
                    "put a blank after the quote or move the text inside it"
                )
            return "".join(out), i
        else:
            out.append(ch)
            i += 1
    raise _LexError(
        f'the quote opened at column {start + 1} is never closed; add a closing " '
        '(write \\" for a quote inside the value)'
    )
