"""The cluster view's pure parts: what the config checksum covers, and when it warns."""
from __future__ import annotations

from tests.core.configs import ONE_TO_ONE
from tests.core.engine import load
from buddylb.store.cluster import config_checksum, view


def test_checksum_covers_decisions_not_listening_addresses():
    base = config_checksum(load(ONE_TO_ONE))
    assert config_checksum(load(ONE_TO_ONE)) == base  # deterministic
    assert config_checksum(load(ONE_TO_ONE.replace("tcp eq www", "tcp eq 8080"))) == base  # a VIP port
    assert config_checksum(load(ONE_TO_ONE.replace("  timeout 30\n", "  timeout 20\n", 1))) != base
    assert config_checksum(load(ONE_TO_ONE.replace("buddy-group red", "buddy-group green", 1))) != base


def test_view_warns_only_when_checksums_differ():
    a = {"id": "a", "config_checksum": "x", "version": "1"}
    b = {"id": "b", "config_checksum": "x", "version": "1"}
    doc = view([b, a], "a")
    assert [n["id"] for n in doc["nodes"]] == ["a", "b"] and doc["warnings"] == []
    assert [n["self"] for n in doc["nodes"]] == [True, False]
    doc = view([a, dict(b, config_checksum="y")], "a")
    assert doc["config_checksums"] == 2 and "x: a; y: b" in doc["warnings"][0]
