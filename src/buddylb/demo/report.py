"""The demo's printed report: what it shows, who went where, the tables, the verdict.

Owns every line `buddylb demo` prints on stdout.  Lines are plain text first (a pipe
or a log file gets no escape codes; rich adds color only on a terminal and honours
NO_COLOR) and the per-client lines are meant to be parsed:

    client 127.0.0.11  http: lnx1 (new)  decrypted: lnx1 (buddy_hit)

Tables come from `buddylb.admin.render`, fed the admin API's JSON, so they read exactly
as `buddylb show ...` does.  It never computes a result; `scenario` does.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from buddylb.admin.render import render_sticky_database, render_stats_sticky
from buddylb.demo.config import VIP, DemoPorts
from buddylb.demo.net import HAND_CLIENT
from buddylb.demo.scenario import Walk, walk_ok

OUTCOME_STYLE = {"new": "cyan", "sticky_hit": "green", "buddy_hit": "magenta", "restick": "yellow",
                 "no_sticky": "", "no_server": "bold red"}
_SEGMENT = 28  # width of one "farm: rserver (outcome)" column


def _cli() -> str:
    """How to call buddylb the way this demo was called (installed script or -m)."""
    if os.path.basename(sys.argv[0]) == "__main__.py":
        return f"{os.path.basename(sys.executable)} -m buddylb"
    return "buddylb"


class Report:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True, highlight=False, emoji=False)

    def _print(self, text: str | Text = "", style: str | None = None) -> None:
        self.console.print(text, style=style, markup=False, highlight=False)

    def header(self, p: DemoPorts) -> None:
        self._print("buddylb demo: buddy sticky, persistence across server farms", style="bold")
        self._print(f"  The cart is plain HTTP on {VIP}:{p.cart} (serverfarm http); checkout is HTTPS on "
                    f"{VIP}:{p.checkout}, TLS ended by buddylb (serverfarm decrypted): another farm and port.")
        self._print(f"  Buddy real groups link lnx1:{p.farms['http']} <-> lnx1:{p.farms['decrypted']} (blue) and "
                    f"lnx2:{p.farms['http']} <-> lnx2:{p.farms['decrypted']} (red); buddy sticky group alpha "
                    "joins the two sticky groups, so a client checks out on the server that holds its cart.")
        self._print("  Context tiers: web lnx1..lnx4 -> app db1 (blue: lnx1, lnx2) or db2 (red: lnx3, lnx4), "
                    "and back on web to the same web server.")

    def started(self, pid: int | None, admin: str, workdir: str) -> None:
        self._print(f"  balancer pid {pid}, admin API http://{admin}, files in {workdir}", style="dim")
        self._print(f"  dashboard: http://{admin}/  (buddy map, sticky database, drain preview; open it in a browser)")

    def section(self, title: str) -> None:
        self._print()
        self._print(f"== {title} ==", style="bold")

    def note(self, text: str) -> None:
        self._print(text)

    def walks(self, walks: list[Walk], was: str | None = None) -> None:
        for w in walks:
            line = Text(f"client {w.client:<11}")
            for v in w.visits:
                seg = Text("  ")
                seg.append(f"{v.farm}: {v.rserver} ")
                seg.append(f"({v.outcome})", style=OUTCOME_STYLE.get(v.outcome, ""))
                seg.pad_right(max(0, _SEGMENT - len(seg)))
                line.append_text(seg)
            line.rstrip()
            if was is not None:
                line.append(f"  was: {was}", style="dim")
            if not walk_ok(w):
                line.append("  MIXED", style="bold red")
            self._print(line)

    def sticky_database(self, rows: list[dict[str, Any]]) -> None:
        self._print(render_sticky_database(rows).rstrip("\n"))

    def stats(self, rows: list[dict[str, Any]]) -> None:
        self._print(render_stats_sticky(rows).rstrip("\n"))

    def verdict(self, label: str, ok: bool) -> None:
        line = Text(f"{label}: ")
        line.append("yes" if ok else "no", style="bold green" if ok else "bold red")
        self._print(line)

    def try_it(self, p: DemoPorts, admin: str, access_log: str) -> None:
        cli = _cli()
        self.section("try it by hand (Ctrl-C stops the demo and everything it started)")
        self._print(f"  curl --interface {HAND_CLIENT} http://{VIP}:{p.cart}/          # cart: a new client")
        self._print(f"  curl -k --interface {HAND_CLIENT} https://{VIP}:{p.checkout}/      # checkout: same server")
        self._print(f"  curl --interface {HAND_CLIENT} http://{VIP}:{p.web}/          # tiers: web")
        self._print(f"  curl --interface {HAND_CLIENT} http://{VIP}:{p.app}/          # tiers: app (L4)")
        self._print(f"  {cli} show sticky database --admin {admin}")
        self._print(f"  {cli} show sticky client {HAND_CLIENT} --admin {admin}")
        self._print(f"  {cli} show impact rserver lnx2 --admin {admin}     # the drain preview: who would move where")
        self._print(f"  {cli} set rserver lnx2 outofservice --admin {admin}     # then curl again: restick")
        self._print(f"  {cli} show stats sticky --admin {admin}")
        self._print(f"  tail -f {access_log}")
        self._print(f"  dashboard: http://{admin}/")

    def stopped(self, kept: str | None) -> None:
        self._print()
        self._print("stopped the balancer and the demo servers" + (f"; files kept in {kept}" if kept else ""))
