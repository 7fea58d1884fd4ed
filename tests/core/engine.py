"""A tiny harness around the public engine API: config text -> snapshot, state, tables."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from buddylb.config.parser import check_text
from buddylb.core.compile import compile_config
from buddylb.core.decide import Decision, Flow, connection_closed, decide
from buddylb.core.snapshot import Snapshot
from buddylb.core.state import RuntimeState
from buddylb.core.sticky import StickyTable


def load(text: str, base_dir: Path | None = None):
    cfg, diags = check_text(textwrap.dedent(text), "test.cfg", base_dir or Path("."))
    errors = [d for d in diags if d.severity == "error"]
    assert not errors, "\n".join(map(str, errors))
    return compile_config(cfg, base_dir or Path("."))


@dataclass
class Engine:
    snap: Snapshot
    state: RuntimeState = field(default_factory=RuntimeState)
    tables: dict = field(default_factory=dict)
    now: float = 1000.0

    def __post_init__(self) -> None:
        self.tables = {c.name: StickyTable.for_context(c) for c in self.snap.contexts.values()}

    @classmethod
    def from_text(cls, text: str) -> "Engine":
        return cls(load(text))

    def vip(self, address: str, port: int):
        return self.snap.vips[(address, port)]

    def connect(self, client: str, vip: tuple[str, int], **flow) -> Decision:
        v = self.vip(*vip)
        return decide(self.snap, self.state, self.tables, v, Flow(client, v.address, **flow), self.now, b"k" * 32)

    def visit(self, client: str, vip: tuple[str, int], **flow) -> Decision:
        """One connection that opens and closes at once."""
        d = self.connect(client, vip, **flow)
        self.close(d)
        return d

    def close(self, d: Decision) -> None:
        connection_closed(self.state, d, self.now)

    def down(self, ctx: str, farm: str, rserver: str) -> None:
        self.state.set_probe((ctx, farm, rserver), False)

    def up(self, ctx: str, farm: str, rserver: str) -> None:
        self.state.set_probe((ctx, farm, rserver), True)

    @property
    def table(self) -> StickyTable:
        return self.tables["Admin"]
