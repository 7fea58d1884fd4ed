"""The `buddylb` command line: one error boundary that maps LbError to exit codes (pip's).

Commands: check, run, demo, show ..., clear ..., reload.  Every command is a thin adapter:
`check` over config + core.compile, `run` over io.server, show/clear/reload over the admin
API client.  With `--json`, stdout carries exactly one JSON document and messages go to
stderr (SPEC §4).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from buddylb.errors import CommandError, ConfigError, LbError


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


class _Boundary(click.Group):
    """Maps our errors to a message on stderr and an exit code, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for d in exc.diagnostics:
                click.echo(str(d), err=True)
            sys.exit(1)
        except CommandError as exc:
            click.echo(f"buddylb: {exc}", err=True)
            sys.exit(exc.exit_code)
        except LbError as exc:
            click.echo(f"buddylb: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Boundary)
@click.version_option(package_name="buddylb")
def main() -> None:
    """buddylb — a load balancer with persistence across server farms (buddy sticky)."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the compiled configuration as JSON.")
def check(config: Path, as_json: bool) -> None:
    """Validate CONFIG: every error with file:line and a fix; exit 1 on errors."""
    from buddylb.admin.views import compiled_view
    from buddylb.config.parser import load_config
    from buddylb.core.compile import compile_config

    if not config.exists():
        raise CommandError(f"{config}: no such file", 1)
    cfg = load_config(config)
    for w in cfg.warnings:
        click.echo(str(w), err=True)
    snap = compile_config(cfg)
    if as_json:
        _emit_json(compiled_view(snap))
    else:
        n_vips = len(snap.vips)
        click.echo(f"{config}: OK ({len(snap.contexts)} context(s), {n_vips} VIP(s), {len(cfg.warnings)} warning(s))")


def _register_optional_commands() -> None:
    """Commands whose adapters live in other packages (io, admin)."""
    from buddylb.admin import commands as admin_commands

    admin_commands.register(main)


try:
    _register_optional_commands()
except ImportError:  # pragma: no cover - during bootstrap, before the adapters exist
    pass
