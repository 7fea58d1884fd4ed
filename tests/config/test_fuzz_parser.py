"""Hypothesis: any text (lines of real keywords, plausible values and junk, at random
indentation) gives a Config and diagnostics that each name the file and a line of the
text, never an uncaught exception (SPEC §2.3: report, do not crash)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buddylb.config.model import Config
from buddylb.config.parser import check_text

KEYWORDS = [
    "rserver host",
    "rserver",
    "ip address",
    "weight",
    "conn-limit max",
    "min",
    "inservice",
    "no inservice",
    "serverfarm host",
    "serverfarm",
    "predictor",
    "roundrobin",
    "leastconns",
    "hash address source",
    "destination",
    "probe tcp",
    "probe http",
    "probe",
    "port",
    "interval",
    "faildetect",
    "passdetect interval",
    "passdetect count",
    "open",
    "request method get url",
    "expect status",
    "header",
    "header-value",
    "fail-action purge",
    "backup",
    "buddy-group",
    "sticky ip-netmask",
    "address both",
    "sticky http-cookie",
    "sticky http-header",
    "sticky ssl-session",
    "timeout",
    "timeout activeconns",
    "replicate sticky",
    "v6-prefix",
    "cookie insert",
    "browser-expire",
    "class-map",
    "class-map type http loadbalance",
    "match-all",
    "match-any",
    "match virtual-address",
    "tcp eq",
    "tcp range",
    "tcp any",
    "match http url",
    "match http header",
    "match http cookie",
    "cookie-value",
    "policy-map type loadbalance first-match",
    "policy-map type loadbalance http first-match",
    "policy-map multi-match",
    "class",
    "class-default",
    "sticky-serverfarm",
    "loadbalance vip inservice",
    "loadbalance policy",
    "ssl-proxy server",
    "ssl-proxy service",
    "cert",
    "key",
    "chain",
    "service-policy input",
    "context",
    "sticky-store",
    "trusted-proxy",
    "http underscores-in-headers",
    "sticky-table max-entries",
    "description",
    "interface vlan",
    "nat dynamic",
    "loadbalance vip icmp-reply",
]
VALUES = [
    "lnx1",
    "lnx2",
    "web",
    "app",
    "blue",
    "S1",
    "alpha",
    "vip",
    "mm",
    "l4",
    "TLS",
    "127.0.0.1",
    "127.0.0.100",
    "::1",
    "255.255.255.255",
    "255.255.255.0",
    "255.0.255.0",
    "80",
    "www",
    "https",
    "8080",
    "0",
    "65536",
    "30",
    "2s",
    "500ms",
    "1h",
    "x9",
    "/health",
    "(",
    ".*",
    "redis://127.0.0.1:6379/0",
    "10.0.0.0/8",
    "http-request",
    "client",
    "2",
    "10",
    "shop.crt",
    "/dev/null",
    "!",
    "#",
    '"a b"',
    '"\\"',
    '"',
    "\\",
    "\t",
    "é",
    "a" * 70,
]

word = st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(VALUES), st.text(max_size=8))
line = st.builds(
    lambda indent, words, tail: indent + " ".join(words) + tail,
    st.sampled_from(["", "", "  ", "    ", "\t", " \t", "      "]),
    st.lists(word, min_size=0, max_size=6),
    st.sampled_from(["", "", " ! comment", " # c", "\r"]),
)
config_text = st.lists(line, min_size=0, max_size=30).map("\n".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_text)
def test_any_text_gives_a_config_or_located_diagnostics(text: str) -> None:
    config, diagnostics = check_text(text, "fuzz.cfg", Path("/nonexistent-fuzz-dir"))
    assert isinstance(config, Config)
    last_line = text.count("\n") + 1
    for d in diagnostics:
        assert d.file == "fuzz.cfg"
        assert 1 <= d.line <= last_line, str(d)
        assert d.severity in ("error", "warning")
        assert d.message and str(d).startswith(f"fuzz.cfg:{d.line}: ")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_located_diagnostics(data: bytes) -> None:
    from buddylb.config.lexer import decode_source

    text, diagnostics = decode_source(data, "bytes.cfg")
    config, parsed = check_text(text, "bytes.cfg", Path("/nonexistent-fuzz-dir"))
    assert isinstance(config, Config)
    for d in diagnostics + parsed:
        assert d.line >= 1


EXAMPLE_LINES = [
    ln
    for ln in (Path(__file__).resolve().parents[2] / "examples" / "shopping-cart.cfg")
    .read_text()
    .splitlines()
    if ln.strip()
]


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """The SPEC example with lines dropped, repeated, re-indented or with a word replaced:
    structurally close enough to reach every validation rule."""
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "indent", "dedent", "word", "move"]))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "repeat":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        elif op == "move":
            lines.insert(draw(st.integers(0, len(lines))), lines.pop(i))
        else:
            words = lines[i].split()
            if words:
                words[draw(st.integers(0, len(words) - 1))] = draw(word)
                lines[i] = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + " ".join(words)
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutated_example_gives_located_diagnostics(text: str) -> None:
    config, diagnostics = check_text(text, "mut.cfg", Path("/nonexistent-fuzz-dir"))
    assert isinstance(config, Config)
    last_line = text.count("\n") + 1
    for d in diagnostics:
        assert 1 <= d.line <= last_line, str(d)
