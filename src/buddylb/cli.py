"""The `buddylb` command line: one error boundary that maps LbError to exit codes (pip's).

Commands: check, run, demo, show ..., clear ..., reload.  Every command is a thin adapter:
`check` over config + core.compile, `run` over app, show/clear/reload over the admin
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


ADMIN_VERBS = ("show", "clear", "set", "reload")  # admin.commands: loaded only when one is asked for


class _Boundary(click.Group):
    """Maps our errors to a message on stderr and an exit code, once, for every command.

    The admin verbs (show, clear, set, reload) and what they import (the HTTP client,
    ssl, email) load only when one of them, or the command list, is asked for: `buddylb
    check` of a 20k-member farm has under a second in all (issue 13 item 6)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in ADMIN_VERBS:
            _register_admin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_admin_commands()
        return super().list_commands(ctx)

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
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document: every diagnostic (file, line, severity, category, message, fix) and, "
                   "when valid, the compiled configuration.")
@click.option("--ace-report", is_flag=True,
              help="Per ACE object of the file: used, mapped (to what), ignored (why) or unsupported.")
def check(config: Path, as_json: bool, ace_report: bool) -> None:
    """Validate CONFIG: every error with file:line and a fix; exit 1 on errors."""
    from buddylb.config.model import Diagnostic
    from buddylb.config.parser import check_file, gc_paused
    from buddylb.config.report import ace_report as report_rows
    from buddylb.config.report import render
    from buddylb.core.compile import compile_config
    from buddylb.service.privileges import unknown_names

    if not config.exists():
        raise CommandError(f"{config}: no such file", 1)
    with gc_paused():
        cfg, diagnostics = check_file(config)
        errors = [d for d in diagnostics if d.severity == "error"]
        snap = None if errors else compile_config(cfg)
    if not errors:
        extra = [Diagnostic(cfg.file, line, msg, "warning", "config") for line, msg in unknown_names(cfg)]
        cfg.warnings += extra
        diagnostics = sorted(diagnostics + extra, key=lambda d: d.line)
    if as_json:
        doc: dict[str, Any] = {
            "file": str(config),
            "valid": not errors,
            "errors": len(errors),
            "warnings": len(diagnostics) - len(errors),
            "diagnostics": [d.as_json() for d in diagnostics],
            "vips": _vip_types(cfg, snap),
        }
        if ace_report:
            doc["ace_report"] = [r.as_json() for r in report_rows(cfg)]
        if snap is not None:
            from buddylb.admin.views import compiled_view  # only here: it imports the data path's tables

            doc["config"] = compiled_view(snap)
        _emit_json(doc)
        sys.exit(1 if errors else 0)
    for d in diagnostics:
        click.echo(str(d), err=True)
    if errors:
        click.echo(f"{config}: {len(errors)} error(s), {len(diagnostics) - len(errors)} warning(s)", err=True)
        sys.exit(1)
    assert snap is not None
    if ace_report:
        click.echo(render(report_rows(cfg)))
    for v in _vip_types(cfg, snap):
        click.echo(f"VIP {v['vip']} ({v['context']}, class {v['class']}): {v['type']} - {v['why']}"
                   f"{'' if v['inservice'] else ' [out of service]'}")
    click.echo("timeouts: " + ", ".join(f"{name} {_duration(v)}" for name, v in snap.timeouts.items()))
    n_vips = len(snap.vips) + len(snap.udp_vips)
    click.echo(f"{config}: OK ({len(snap.contexts)} context(s), {n_vips} VIP(s), {len(cfg.warnings)} warning(s))")


def _duration(seconds: float) -> str:
    """A timeout as an operator writes it (`timeout tunnel 1h`, `timeout client 30s`)."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _vip_types(cfg: Any, snap: Any) -> list[dict[str, Any]]:
    """Each VIP, what it became (L4 relay or L7 proxy) and why (SPEC §2.1)."""
    if snap is None:
        return []
    out = []
    for v in [*snap.vips.values(), *snap.udp_vips.values()]:
        pol = cfg.contexts[v.context].lb_policies[v.policy.name]
        kind = "UDP" if v.protocol == "udp" else "L7" if v.policy.http else "L4"
        why = "udp datagram relay" if v.protocol == "udp" else pol.reason
        out.append({"vip": v.name, "context": v.context, "class": v.class_name, "policy": v.policy.name,
                    "protocol": v.protocol, "type": kind, "why": why, "inservice": v.inservice})
    return out


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--admin", default="127.0.0.1:9180", show_default=True, help="Admin API address HOST:PORT.")
@click.option("--admin-token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the admin token; required when --admin is not a loopback address.")
@click.option("--access-log", default="-", show_default=True,
              help="PATH (reopened on SIGUSR1), '-' for stdout, syslog[:/dev/log|HOST:PORT], or 'off'.")
@click.option("--access-log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Per-install cookie signing secret (created 0600 if missing). Default: a fresh one per start.")
@click.option("--sticky-store", "sticky_store", metavar="URL",
              help="Shared sticky store: redis://HOST:PORT/DB, redis-sentinel://H:P,H:P/MASTER/DB or "
                   "redis-cluster://H:P,H:P; overrides the config's sticky-store line.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes sharing the VIPs; a client's connections all reach one worker.")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), hidden=True)
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--user", metavar="NAME", help="Drop to this user once every listener is bound (overrides `user`).")
@click.option("--group", metavar="NAME", help="Drop to this group (overrides `group`; default: the user's).")
def run(config: Path, admin: str, admin_token_file: Path | None, access_log: str, access_log_format: str,
        secret_file: Path | None, sticky_store: str | None, workers: int, ready_file: Path | None,
        log_level: str, user: str | None, group: str | None) -> None:
    """Serve CONFIG: VIP listeners, probes, admin API. SIGHUP reloads, SIGTERM drains and exits."""
    import logging

    from buddylb.admin.security import admin_token_for
    from buddylb.app import RunOptions
    from buddylb.app import run as serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    if not config.exists():
        raise CommandError(f"{config}: no such file", 1)
    refuse_fixed_hash_seed()
    token = admin_token_for(admin, admin_token_file)
    sys.exit(serve(RunOptions(config=config, admin=admin, admin_token=token, access_log=access_log,
                              access_log_format=access_log_format, secret_file=secret_file,
                              ready_file=ready_file, workers=workers, reuse_port=workers > 1,
                              sticky_store=sticky_store, user=user, group=group)))


def refuse_fixed_hash_seed() -> None:
    """Sticky keys from cookies and headers are client-chosen strings in dicts: with string
    hashing fixed (PYTHONHASHSEED=0) a client could pick colliding keys and turn every
    lookup into a scan (hash flooding). Randomised hashing is Python's default; keep it."""
    import os

    if os.environ.get("PYTHONHASHSEED") == "0":
        raise CommandError("refusing to run with PYTHONHASHSEED=0: it makes sticky-key hashing predictable "
                           "(hash flooding); unset PYTHONHASHSEED or set it to 'random'", 2)


def _register_admin_commands() -> None:
    """show / clear / reload / set talk to a running instance through the admin API
    (registered once, on first use: see _Boundary)."""
    if "show" in main.commands:
        return
    from buddylb.admin import commands as admin_commands

    admin_commands.register(main)


@main.command()
@click.option("--once", is_flag=True, help="Exit after the report instead of waiting for Ctrl-C.")
@click.option("--keep-dir", is_flag=True, help="Keep the temp dir (config, certificate, access log) on exit.")
def demo(once: bool, keep_dir: bool) -> None:
    """Run the embedded shopping-cart and tiers examples end to end on loopback; no file needed."""
    from buddylb.demo import run_demo

    sys.exit(run_demo(once=once, keep_dir=keep_dir))
