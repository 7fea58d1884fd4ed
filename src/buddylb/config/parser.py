"""The configuration front end: text -> `Config` model + diagnostics (SPEC §2).

Theory of operation: `lexer.lex` turns the text into logical lines (words and
indentation); `reader.Reader` gives each line to the sub-mode it belongs to, by ACE's
mode rules and the file's indentation (SPEC §2.4), using the keyword tables the sections
register (`sections/*.TOP` here at the top, their own blocks below).  Handlers fill the
model in a `ParseSession`; every problem becomes a Diagnostic and parsing goes on with
the next line, so one run reports every error.  `check_text` adds `validate` (the
cross-object rules of SPEC §2.3); `load_config` reads the file and is the one place
that raises `ConfigError`.

This module never compiles the model for the data path (`core.compile` does) and never
prints: callers decide how to show diagnostics.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from buddylb.config.grammar import block
from buddylb.config.lexer import decode_source, lex
from buddylb.config.model import Config, Diagnostic
from buddylb.config.reader import Reader
from buddylb.config.sections import (
    acl,
    classmap,
    device,
    parammap,
    policymap,
    probe,
    rserver,
    serverfarm,
    sslproxy,
    sticky,
    toplevel,
)
from buddylb.config.session import ParseSession
from buddylb.config.validate import validate
from buddylb.errors import ConfigError

TOP_LEVEL = block(
    "top level",
    rserver.TOP,
    serverfarm.TOP,
    probe.TOP,
    sticky.TOP,
    classmap.TOP,
    policymap.TOP,
    sslproxy.TOP,
    toplevel.TOP,
    acl.TOP,
    parammap.TOP,
    device.TOP,
)


def parse_text(text: str, file: str = "<config>") -> tuple[Config, list[Diagnostic]]:
    """Parse one configuration text; returns the model and the parse diagnostics
    (errors and warnings, in line order).  Cross-object rules are `validate`'s."""
    config, diagnostics, _incomplete = _parse(text, file)
    return config, diagnostics


def _parse(text: str, file: str) -> tuple[Config, list[Diagnostic], frozenset[int]]:
    session = ParseSession(file)
    lines, diagnostics = lex(text, file)
    session.diagnostics.extend(diagnostics)
    Reader(session, TOP_LEVEL, device.ANYWHERE).read(lines)
    session.diagnostics.extend(session.ignored_warnings())
    for ctx in session.config.contexts.values():
        policymap.settle_policy_types(ctx)
    diagnostics = _in_line_order(session.diagnostics)
    session.config.warnings = [d for d in diagnostics if d.severity == "warning"]
    return session.config, diagnostics, frozenset(session.incomplete)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing and compiling only allocate (a model
    holds no garbage cycles until it is dropped), and for a 20k-member farm the collector's
    passes over the growing heap were a third of `buddylb check`'s time (issue 13 item 6).
    It runs again afterwards, as it was (another caller may have paused it already). The
    CLI's `check` uses it; a reload has its own pause and freeze (Balancer.prepare_off_loop),
    so `check_text` leaves the collector alone."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def check_text(
    text: str, file: str = "<config>", base_dir: Path | None = None
) -> tuple[Config, list[Diagnostic]]:
    """Parse and validate one text: the model and every diagnostic, in line order.

    Objects whose block had a bad line are not also reported as missing what that line
    said (no cascades).  `base_dir` (default: the folder of `file`) anchors TLS paths."""
    config, parsed, incomplete = _parse(text, file)
    folder = base_dir if base_dir is not None else Path(file).resolve().parent
    diagnostics = _in_line_order(parsed + validate(config, folder, incomplete))
    config.warnings = [d for d in diagnostics if d.severity == "warning"]
    return config, diagnostics


def check_file(path: str | Path) -> tuple[Config, list[Diagnostic]]:
    """Read, parse and validate a file without raising: the model and every diagnostic
    (`buddylb check --json` prints them whether or not the file is valid, SPEC §2.3)."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return Config(file=file), [Diagnostic(file, 0, f"cannot read the configuration file ({reason}); check the path")]
    text, undecodable = decode_source(data, file)
    config, diagnostics = check_text(text, file, Path(path).resolve().parent)
    return config, _in_line_order(undecodable + diagnostics)


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a configuration file.

    Raises `ConfigError` carrying every diagnostic (errors and warnings) when any is an
    error; otherwise returns the Config with its warnings in `config.warnings`.
    `config.file` is the path as given, so `core.compile` resolves certificate paths
    against its folder."""
    config, diagnostics = check_file(path)
    if any(d.severity == "error" for d in diagnostics):
        raise ConfigError(diagnostics)
    return config


def _in_line_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: d.line)
