"""show / clear / set / reload: CLI words -> one admin API call -> a renderer (SPEC §4).

ACE-like word syntax, options after the words:

    buddylb show sticky database [buddy] [context C] [group G] [client A[/LEN]] [farm F] [rserver R]
                                 [limit N] [cursor CURSOR]
    buddylb show stats sticky --json --admin 127.0.0.1:9180

Every command is one row of `COMMANDS`: its words, the words it accepts after them
(one positional, flags, `keyword VALUE` pairs, a required choice), how to turn them into
an API request, and how to print the reply.  Keywords are case-insensitive, names are
not.  This module only parses, calls `admin.client` and prints; errors are CommandError
and reach the one boundary in `cli.py` (exit 2: usage; the rest: see `admin.client`).
With `--json` stdout carries exactly the reply's `data`; messages go to stderr.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click

from buddylb.admin import render
from buddylb.admin.client import EXIT_REFUSED, AdminClient, token_from
from buddylb.errors import CommandError

EXIT_USAGE = 2
PLACEHOLDER = {"context": "C", "group": "G", "client": "A[/LEN]", "key": "K", "rserver": "R", "farm": "F",
               "limit": "N", "cursor": "CURSOR"}


@dataclass
class Parsed:
    arg: str | None = None
    flags: set[str] = field(default_factory=set)
    params: dict[str, str] = field(default_factory=dict)
    choice: str | None = None


Request = tuple[str, list[str], dict[str, Any], dict[str, Any] | None]  # method, path words, query, body


@dataclass(frozen=True)
class Command:
    verb: str
    words: tuple[str, ...]
    request: Callable[[Parsed], Request]
    show: Callable[[Any, Parsed], str]
    arg: str | None = None  # placeholder of the one positional word (NAME, ADDRESS)
    arg_required: bool = False
    flags: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    choice: tuple[str, ...] = ()  # exactly one of these words is required
    after: Callable[[Any], None] | None = None  # judges the reply once it is printed

    @property
    def usage(self) -> str:
        parts = [self.verb, *self.words]
        if self.arg:
            parts.append(self.arg if self.arg_required else f"[{self.arg}]")
        if self.choice:
            parts.append("|".join(self.choice))
        parts += [f"[{f}]" for f in self.flags]
        parts += [f"[{p} {PLACEHOLDER[p]}]" for p in self.params]
        return " ".join(parts)


# -- requests -----------------------------------------------------------------------------
def _get(route: str) -> Callable[[Parsed], Request]:
    def build(p: Parsed) -> Request:
        query: dict[str, Any] = dict(p.params)
        if "buddy" in p.flags:
            query["buddy"] = "1"
        return "GET", ["show", route, *([p.arg] if p.arg else [])], query, None
    return build


def _impact(p: Parsed) -> Request:
    assert p.arg is not None
    query = {**p.params, **({"action": "drain"} if "drain" in p.flags else {})}
    return "GET", ["show", "impact", "rserver", p.arg], query, None


def _clear(p: Parsed) -> Request:
    return "POST", ["clear", "sticky-database"], {}, dict(p.params)


def _set_rserver(p: Parsed) -> Request:
    assert p.arg is not None
    return "POST", ["set", "rserver", p.arg], {}, {"state": p.choice, **p.params}


def _reload(p: Parsed) -> Request:
    return "POST", ["reload"], {}, {}


# -- text output --------------------------------------------------------------------------
def _table(name: str) -> Callable[[Any, Parsed], str]:
    fn = render.RENDERERS[name]
    if name in ("rserver", "serverfarm", "buddy-group", "probe"):
        return lambda data, p: fn(data, detail="detail" in p.flags)
    return lambda data, p: fn(data)


def _sticky_database(data: list, p: Parsed) -> str:
    """The table, and where the next page starts when a `limit` filled this one."""
    out = render.render_sticky_database(data)
    if "limit" in p.params and data and len(data) >= int(p.params["limit"]):
        out += f"more entries: next page with cursor {data[-1]['cursor']}\n"
    return out


def _cleared(data: dict, p: Parsed) -> str:
    n = data["removed"]
    return f"cleared {n} sticky entr{'y' if n == 1 else 'ies'}\n"


SET_DONE = {"inservice": "in service",
            "outofservice": "out of service (open connections finish, new clients avoid it)",
            "drain": "draining (clients stuck to it keep it, new clients avoid it)"}


def _set_done(data: dict, p: Parsed) -> str:
    how = SET_DONE[data["state"]]
    return f"rserver {data['rserver']}: {how} in context {', '.join(data['contexts'])}\n"


def _reloaded(data: dict, p: Parsed) -> str:
    if not data["reloaded"]:
        return ""
    return f"reload: configuration generation {data['generation']} in service\n"


def _after_reload(data: dict) -> None:
    """Warnings and errors of a reload go to stderr; a refused reload exits non-zero."""
    for m in data.get("messages", []):
        click.echo(m, err=True)
    if not data["reloaded"]:
        raise CommandError("reload refused; the running configuration is unchanged", EXIT_REFUSED)


COMMANDS: tuple[Command, ...] = (
    Command("show", ("sticky", "database"), _get("sticky-database"), _sticky_database,
            flags=("buddy",), params=("context", "group", "client", "farm", "rserver", "limit", "cursor")),
    Command("show", ("sticky", "client"), _get("sticky-client"), _table("sticky-client"),
            arg="ADDRESS|VALUE", arg_required=True, params=("context",)),
    Command("show", ("rserver",), _get("rserver"), _table("rserver"), arg="NAME", flags=("detail",),
            params=("context",)),
    Command("show", ("serverfarm",), _get("serverfarm"), _table("serverfarm"), arg="NAME", flags=("detail",),
            params=("context",)),
    Command("show", ("stats", "sticky"), _get("stats-sticky"), _table("stats-sticky"), params=("context",)),
    Command("show", ("buddy-group",), _get("buddy-group"), _table("buddy-group"), arg="NAME", flags=("detail",),
            params=("context",)),
    Command("show", ("probe",), _get("probe"), _table("probe"), arg="NAME", flags=("detail",)),
    Command("show", ("cluster",), _get("cluster"), _table("cluster")),
    Command("show", ("access-list",), _get("access-list"), _table("access-list"), arg="NAME"),
    Command("show", ("impact", "rserver"), _impact, _table("impact"), arg="NAME", arg_required=True,
            flags=("drain",), params=("farm", "context")),
    Command("clear", ("sticky", "database"), _clear, _cleared, params=("context", "group", "key", "rserver")),
    Command("set", ("rserver",), _set_rserver, _set_done, arg="NAME", arg_required=True,
            choice=("inservice", "outofservice", "drain"), params=("context",)),
    Command("reload", (), _reload, _reloaded, after=_after_reload),
)


# -- parsing ------------------------------------------------------------------------------
def _usage_error(verb: str, message: str) -> CommandError:
    usages = "".join(f"\n  buddylb {c.usage}" for c in COMMANDS if c.verb == verb)
    return CommandError(f"{message}\nusage:{usages}", EXIT_USAGE)


def parse(verb: str, words: tuple[str, ...]) -> tuple[Command, Parsed]:
    """The longest command whose words start `words`, and what follows them."""
    lowered = tuple(w.lower() for w in words)
    matches = [c for c in COMMANDS if c.verb == verb and lowered[: len(c.words)] == c.words]
    if not matches:
        raise _usage_error(verb, f"unknown command: buddylb {' '.join((verb, *words))}")
    cmd = max(matches, key=lambda c: len(c.words))
    p = Parsed()
    rest = list(words[len(cmd.words):])
    while rest:
        word = rest.pop(0)
        kw = word.lower()
        if kw in cmd.params:
            if not rest:
                raise _usage_error(verb, f'"{kw}" needs a value: {kw} {PLACEHOLDER[kw]}')
            if kw in p.params:
                raise _usage_error(verb, f'"{kw}" given twice')
            p.params[kw] = rest.pop(0)
        elif kw in cmd.flags:
            p.flags.add(kw)
        elif kw in cmd.choice and p.choice is None:
            p.choice = kw
        elif cmd.arg and p.arg is None:
            p.arg = word
        else:
            raise _usage_error(verb, f'unexpected word "{word}" in: buddylb {" ".join((verb, *words))}')
    if cmd.arg_required and p.arg is None:
        raise _usage_error(verb, f"{' '.join((verb, *cmd.words))} needs {cmd.arg}")
    if cmd.choice and p.choice is None:
        raise _usage_error(verb, f"{' '.join((verb, *cmd.words))} needs one of: {', '.join(cmd.choice)}")
    return cmd, p


def execute(verb: str, words: tuple[str, ...], admin: str, token_file: Path | None, as_json: bool) -> None:
    cmd, parsed = parse(verb, words)
    method, path, query, body = cmd.request(parsed)
    data = AdminClient(admin, token_from(token_file)).call(method, path, query, body)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        text = cmd.show(data, parsed)
        if text:
            click.echo(text, nl=not text.endswith("\n"))
    if cmd.after is not None:
        cmd.after(data)


# -- click glue -------------------------------------------------------------------------
def _options(f: Callable) -> Callable:
    f = click.option("--json", "as_json", is_flag=True, help="Print the reply's data as one JSON document.")(f)
    f = click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="File holding the admin token (or set BUDDYLB_ADMIN_TOKEN).")(f)
    return click.option("--admin", default="127.0.0.1:9180", show_default=True, envvar="BUDDYLB_ADMIN",
                        help="Admin API address HOST:PORT of the running buddylb (env BUDDYLB_ADMIN).")(f)


def _verb(main: click.Group, verb: str, summary: str) -> None:
    syntax = "\n".join(f"  buddylb {c.usage}" for c in COMMANDS if c.verb == verb)

    @main.command(verb, help=f"{summary}\n\n\b\n{syntax}", no_args_is_help=verb != "reload")
    @click.argument("words", nargs=-1)
    @_options
    def command(words: tuple[str, ...], admin: str, token_file: Path | None, as_json: bool) -> None:
        execute(verb, words, admin, token_file, as_json)


def register(main: click.Group) -> None:
    """Attach the admin commands to the `buddylb` group."""
    _verb(main, "show", "Show the state of a running buddylb (through its admin API).")
    _verb(main, "clear", "Remove sticky entries from a running buddylb.")
    _verb(main, "set", "Take an rserver in or out of service, or drain it, without a reload.")
    _verb(main, "reload", "Swap in the configuration file again; a bad one is refused and the old one kept.")
