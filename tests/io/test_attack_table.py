"""soak.attacks writes its table between markers of RELIABILITY.md and nowhere else."""
from __future__ import annotations

from pathlib import Path

from soak.attacks import BEGIN, END, Row, write


def test_table_goes_before_method_then_replaces_itself(tmp_path: Path) -> None:
    out = tmp_path / "RELIABILITY.md"
    out.write_text("# Reliability\n\n## sticky memory: pass\n\n## Method\n\n- text\n")
    write([Row("a | b", "tool", "held", "not run", True)], out)
    first = out.read_text()
    assert first.index(BEGIN) < first.index("## Method") and "| a | b | tool | held | not run | yes |" in first
    write([Row("c", "tool", "broke", "fine", False)], out)
    second = out.read_text()
    assert second.count(BEGIN) == 1 and second.count(END) == 1
    assert "| c | tool | broke | fine | NO |" in second and "| a | b |" not in second
    assert second.startswith("# Reliability\n\n## sticky memory: pass\n") and second.endswith("- text\n")
