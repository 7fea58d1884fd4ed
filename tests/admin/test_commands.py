"""The word syntax of show / clear / set / reload, without an instance: words -> API request."""
from __future__ import annotations

import pytest

from buddylb.admin.commands import COMMANDS, parse
from buddylb.errors import CommandError


def request(line: str):
    verb, *words = line.split()
    cmd, parsed = parse(verb, tuple(words))
    return cmd.request(parsed)


@pytest.mark.parametrize("line, expected", [
    ("show sticky database", ("GET", ["show", "sticky-database"], {}, None)),
    ("show sticky database buddy context Admin group alpha client 127.0.0.9",
     ("GET", ["show", "sticky-database"], {"buddy": "1", "context": "Admin", "group": "alpha",
                                           "client": "127.0.0.9"}, None)),
    ("show sticky client ::1 context Lab", ("GET", ["show", "sticky-client", "::1"], {"context": "Lab"}, None)),
    ("show rserver", ("GET", ["show", "rserver"], {}, None)),
    ("show rserver detail", ("GET", ["show", "rserver"], {}, None)),
    ("show rserver Lnx1 DETAIL", ("GET", ["show", "rserver", "Lnx1"], {}, None)),  # names keep their case
    ("show SERVERFARM web detail context C1", ("GET", ["show", "serverfarm", "web"], {"context": "C1"}, None)),
    ("show stats sticky", ("GET", ["show", "stats-sticky"], {}, None)),
    ("show buddy-group blue", ("GET", ["show", "buddy-group", "blue"], {}, None)),
    ("show probe TCP-CHECK", ("GET", ["show", "probe", "TCP-CHECK"], {}, None)),
    ("clear sticky database", ("POST", ["clear", "sticky-database"], {}, {})),
    ("clear sticky database context A group g key 10.0.0.0/24 rserver r1",
     ("POST", ["clear", "sticky-database"], {}, {"context": "A", "group": "g", "key": "10.0.0.0/24",
                                                 "rserver": "r1"})),
    ("set rserver lnx1 outofservice", ("POST", ["set", "rserver", "lnx1"], {}, {"state": "outofservice"})),
    ("set rserver lnx1 InService context Lab",
     ("POST", ["set", "rserver", "lnx1"], {}, {"state": "inservice", "context": "Lab"})),
    ("set rserver lnx1 drain", ("POST", ["set", "rserver", "lnx1"], {}, {"state": "drain"})),
    ("show impact rserver lnx1 farm http drain",
     ("GET", ["show", "impact", "rserver", "lnx1"], {"farm": "http", "action": "drain"}, None)),
    ("reload", ("POST", ["reload"], {}, {})),
])
def test_words_to_request(line: str, expected) -> None:
    assert request(line) == expected


def test_detail_flag_reaches_the_renderer() -> None:
    cmd, parsed = parse("show", ("rserver", "detail"))
    assert parsed.flags == {"detail"} and parsed.arg is None


@pytest.mark.parametrize("line", [
    "show", "show sticky", "show sticky client", "show stats", "show rserver a b",
    "show probe p context Admin", "clear sticky", "clear sticky database key", "set rserver",
    "set rserver a", "reload now", "show sticky database context A context B",
])
def test_bad_words_are_usage_errors(line: str) -> None:
    verb, *words = line.split()
    with pytest.raises(CommandError) as exc:
        parse(verb, tuple(words))
    assert exc.value.exit_code == 2 and "usage:" in str(exc.value)


def test_every_usage_line_parses() -> None:
    fill = {"NAME": "x", "ADDRESS": "127.0.0.1", "C": "c", "G": "g", "A": "127.0.0.1", "K": "k", "R": "r"}
    for cmd in COMMANDS:
        words = []
        for w in cmd.usage.split()[1:]:
            w = w.strip("[]")
            words.append(fill.get(w, w.split("|")[0]))
        assert parse(cmd.verb, tuple(words))[0] is cmd, cmd.usage
