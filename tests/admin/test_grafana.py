"""contrib/grafana/buddylb.json (issue 14 item 5): it parses, and every metric it queries
is exported by a running buddylb's /metrics."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.admin.support import Shop

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "buddylb.json"
METRIC = re.compile(r"\bbuddylb_[a-z_]+\b")


def queried() -> set[str]:
    data = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in data["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in data["templating"]["list"]]
    return {m for e in exprs for m in METRIC.findall(e)}


def exported(admin: str) -> set[str]:
    """Sample names, plus the `_total` name of every counter family (declared before its first event)."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    names: set[str] = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names.update(s.name for s in fam.samples)
        if fam.type == "counter":
            names.add(fam.name + "_total")
    return names


def test_dashboard_is_grafana_json_with_panels() -> None:
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] == "buddylb" and data["panels"]
    assert all(p["targets"] and p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in data["panels"])
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))


def test_every_queried_metric_is_exported(shop: Shop) -> None:
    shop.get("127.0.0.91", "http")  # a request and a decision: the labelled counters have samples
    names = queried()
    assert len(names) >= 20
    missing = sorted(names - exported(shop.lb.admin))
    assert not missing, f"the Grafana dashboard queries metrics buddylb does not export: {missing}"
