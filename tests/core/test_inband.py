"""core.inband (ACE inband-health check): counts, and the log / remove verdicts when N
failures fall within the reset interval."""
from __future__ import annotations

from buddylb.config.model import InbandSpec
from buddylb.core.inband import InbandTracker
from tests.config.support import diagnose

KEY = ("Admin", "web", "lnx1")


def test_count_only_counts() -> None:
    t = InbandTracker()
    assert [t.failed(KEY, InbandSpec("count"), 1.0 + i) for i in range(5)] == [None] * 5
    assert t.total(KEY) == 5


def test_threshold_within_the_reset_interval() -> None:
    t = InbandTracker()
    spec = InbandSpec("remove", threshold=3, reset_s=0.5, resume_s=30)
    assert t.failed(KEY, spec, 10.0) is None
    assert t.failed(KEY, spec, 10.2) is None
    assert t.failed(KEY, spec, 10.9) is None  # 10.0 fell out of the 0.5 s window
    assert t.failed(KEY, spec, 11.0) is None
    assert t.failed(KEY, spec, 11.1) == "remove"  # 10.9, 11.0, 11.1
    assert t.failed(KEY, spec, 11.2) is None  # the window starts again
    assert t.failed(KEY, InbandSpec("log", 1), 20.0) == "log" and t.total(KEY) == 7


def test_parse_inband_health_lines() -> None:
    base = "serverfarm host web\n  inband-health check "
    for line, spec in (
        ("count", InbandSpec("count")),
        ("log 5", InbandSpec("log", 5, 0.1, 0.0)),
        ("remove 3 reset 2000 resume-service 60", InbandSpec("remove", 3, 2.0, 60.0)),
    ):
        config, diagnostics = diagnose(base + line + "\n")
        assert diagnostics == [] and config.contexts["Admin"].farms["web"].inband == spec
    _, diagnostics = diagnose(base + "remove 3 resume-service 5\n")
    assert "resume-service 5 is out of range" in diagnostics[0].message
