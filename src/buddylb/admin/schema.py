"""Strict shapes of admin API input: JSON bodies, query strings and path arguments.

Owns: `parse_body` (bounded size was checked by the gate; here: bounded nesting, a JSON
object at the top) and `Shape`, the declared fields of one endpoint. An endpoint's
handler only ever sees values of the declared types: a boolean is a JSON `true` or
`false` (never `"false"`, `"no"`, `0` or `null`: issue 13 item 5), a name is a
non-empty string, an unknown field is an error. Every violation raises `BadInput`,
which the API answers with a JSON 400. It must never coerce (`bool("false")` is True).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_DEPTH = 8  # no admin body nests deeper than 2; 60,000 "[" must not reach json (RecursionError)
MAX_NAME = 256

# JSON strings (with escapes) are skipped when counting brackets: a "[" inside a
# string does not nest.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class BadInput(ValueError):
    """Input that does not fit the endpoint's shape; the message is shown to the client."""


def nesting_depth(raw: bytes, limit: int) -> int:
    """The deepest bracket nesting of `raw`, stopping as soon as it exceeds `limit`.

    Linear in the body (regex scans, no Python loop per byte) and never recursive."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty)."""
    if not raw.strip():
        return {}
    if nesting_depth(raw, MAX_DEPTH) > MAX_DEPTH:
        raise BadInput(f"invalid JSON body: nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadInput(f"invalid JSON body: {exc}") from exc
    if not isinstance(value, dict):
        raise BadInput("invalid JSON body: it must be a JSON object")
    return value


# Field kinds: what a value must be, and how it is checked.
NAME, BOOL, FLAG = "name", "boolean", "flag"


def _check(kind: str, where: str, key: str, value: Any) -> Any:
    if kind == NAME:
        if not isinstance(value, str) or not value or len(value) > MAX_NAME:
            raise BadInput(f'{where} field "{key}" must be a non-empty string of at most {MAX_NAME} characters')
        return value
    if kind == BOOL:
        if not isinstance(value, bool):  # JSON true / false only
            raise BadInput(f'{where} field "{key}" must be true or false (a JSON boolean), not {json.dumps(value)}')
        return value
    if kind == FLAG:  # a query-string switch
        if value not in ("1", "true", "0", "false"):
            raise BadInput(f'query parameter "{key}" must be 1, true, 0 or false')
        return value in ("1", "true")
    raise AssertionError(kind)


@dataclass(frozen=True, slots=True)
class Shape:
    """What one endpoint accepts: path arguments (min, max), query and body fields.

    `body` and `query` map a field name to its kind; names in `required` must be present."""

    args: tuple[int, int] = (0, 0)
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    arg_name: str = "NAME"

    def check_args(self, args: list[str]) -> list[str]:
        lo, hi = self.args
        if not lo <= len(args) <= hi:
            want = ("no argument" if hi == 0 else f"{lo} words ({self.arg_name})" if lo == hi > 1
                    else f"one {self.arg_name}" if lo == 1 else f"at most one {self.arg_name}")
            raise BadInput(f"this command takes {want} in the path, got {len(args)}")
        for a in args:
            _check(NAME, "path", self.arg_name, a)
        return args

    def check_query(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            kind = self.query.get(key)
            if kind is None:
                raise BadInput(f'unknown query parameter "{key}"; this command takes: '
                               f'{", ".join(sorted(self.query)) or "none"}')
            if key in out:
                raise BadInput(f'query parameter "{key}" given twice')
            out[key] = _check(kind, "query", key, value)
        return out

    def check_body(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - set(self.body))
        if unknown:
            raise BadInput(f'unknown field "{unknown[0]}"; this command takes: {", ".join(sorted(self.body)) or "none"}')
        missing = sorted(self.required - set(body))
        if missing:
            raise BadInput(f'missing field "{missing[0]}" ({self.body[missing[0]]})')
        return {k: _check(self.body[k], "body", k, v) for k, v in body.items()}
