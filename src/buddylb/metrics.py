"""Every Prometheus metric of buddylb, declared once (SPEC §4: `/metrics` on the admin API).

Two kinds, both in one CollectorRegistry per Balancer (never the global one, so tests
and several balancers in one process never share numbers):

- Event counters, fed as things happen, kept by the balancer's tally (io/tally.py) and
  read here at scrape time: `buddylb_decisions_total{context,farm,outcome}` counts once
  per reported `Balancer.decide()` with the SPEC §3 outcome names; the access-log tap
  (`Tally.tap`) counts finished L4 connections, L7 requests, their bytes and HTTP status
  classes.  They are plain dicts of ints,
  exported at scrape time: the data path and the admin API share one event loop, so no
  lock is needed (prometheus-client's Counter takes one per inc, measured at ~5% of an
  L7 request in bench/).
- State read at scrape time by `_StateCollector` (the sticky tables, probe targets,
  RuntimeState, store status): nothing on the data path keeps them up to date.

`Metrics(balancer)` installs its taps: construct it once per Balancer.  It must never
change what the data path does: the original access log still receives every record
(unless it is off: then it is not called at all).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from buddylb.io.lograte import RATE

if TYPE_CHECKING:
    from buddylb.io.runtime import Balancer

ROUTE = ("vip", "farm", "rserver")
disable_created_metrics()  # no `*_created` series: half the output, no use for a scraper of one process

# Read at scrape time: name -> (type, help, labels).  Counter names get `_total` on export.
STATE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "buddylb_sticky_entries": ("gauge", "Sticky entries stored now.", ("context",)),
    "buddylb_sticky_capacity": ("gauge", "Sticky table capacity (sticky-table max-entries).", ("context",)),
    "buddylb_sticky_hits": ("counter", "Decisions by an existing entry (sticky_hit).", ("context",)),
    "buddylb_sticky_misses": ("counter", "Decisions with no entry, a new one stored (new).", ("context",)),
    "buddylb_sticky_buddy_hits": ("counter", "Decisions by a buddy real group (buddy_hit).", ("context",)),
    "buddylb_sticky_resticks": ("counter", "Entries re-stuck to another rserver (restick).", ("context",)),
    "buddylb_sticky_evictions": ("counter", "Entries evicted because the table was full.", ("context",)),
    "buddylb_sticky_expirations": ("counter", "Entries expired.", ("context",)),
    "buddylb_sticky_unstored": ("counter", "New clients balanced without an entry (table full of entries "
                                "in use).", ("context",)),
    "buddylb_probe_up": ("gauge", "Probe verdict per target: 1 passing, 0 failed.",
                         ("context", "probe", "farm", "rserver")),
    "buddylb_probe_consecutive_failures": ("gauge", "Consecutive failed checks per probe target.",
                                           ("context", "probe", "farm", "rserver")),
    "buddylb_rserver_available": ("gauge", "1 when the rserver may take new clients in the farm (SPEC §3).",
                                  ("context", "farm", "rserver")),
    "buddylb_rserver_open_connections": ("gauge", "Open connections (L4) / requests in flight (L7).",
                                         ("context", "farm", "rserver")),
    "buddylb_sticky_store_degraded": ("gauge", "1 while the sticky store is unreachable and buddylb "
                                      "decides without it.", ("kind",)),
    "buddylb_cluster_nodes": ("gauge", "Nodes whose heartbeat is in the shared sticky store (1 without one).", ()),
    "buddylb_cluster_config_mismatch": ("gauge", "1 when nodes sharing the sticky store run different "
                                        "configurations (show cluster names them).", ()),
    "buddylb_open_client_connections": ("gauge", "Client connections open now.", ()),
    "buddylb_config_generation": ("gauge", "Generation of the configuration in service.", ()),
    "buddylb_reloads": ("counter", "Configuration reloads put in service.", ()),
    "buddylb_maxconn": ("gauge", "Client connections open at once before accept pauses (SPEC §5).", ()),
    "buddylb_accept_paused": ("gauge", "1 while accept is paused at maxconn.", ()),
    "buddylb_accept_pauses": ("counter", "Times accept paused at maxconn.", ()),
    "buddylb_accept_refused": ("counter", "Clients closed at accept beyond maxconn and its overshoot.", ()),
    "buddylb_accept_failed": ("counter", "Times the descriptor table was found full (accept would fail with "
                              "EMFILE): accept paused; the budget is wrong for this limit.", ()),
    "buddylb_vip_conn_limit_pauses": ("counter", "Times a VIP reached its conn-limit max: a TCP VIP stops "
                                      "accepting (clients wait in the backlog), a UDP VIP (`/udp`) drops the "
                                      "datagrams of new clients, until fewer than its min are open.", ("vip",)),
    "buddylb_vip_conn_limit_dropped": ("counter", "Datagrams of new clients a UDP VIP dropped at its conn-limit "
                                       "(the flows already open go on).", ("vip",)),
    "buddylb_log_events": ("counter", "Events logged rate-limited, by cause (408s, accept pauses, connect "
                           "failures, ...): the count behind each summary line.", ("cause",)),
    "buddylb_inband_failures": ("counter", "Failed connects per rserver in farms with inband-health check.",
                                ("context", "farm", "rserver")),
    "buddylb_acl_hits": ("counter", "Connections matched by an access-list line (SPEC §2.4).",
                         ("context", "access_list", "line")),
    "buddylb_acl_denied": ("counter", "Connections an access-group refused, per VIP (SPEC §2.4).",
                           ("context", "vip")),
    "buddylb_proxy_refused": ("counter", "Connections closed for their PROXY protocol header on an accept-proxy "
                              "VIP: malformed, timeout, truncated, untrusted (from a peer outside accept-proxy).",
                              ("context", "vip", "reason")),
}

_STICKY_COUNTERS = {  # metric -> StickyTable.counters field
    "buddylb_sticky_hits": "hits", "buddylb_sticky_misses": "misses", "buddylb_sticky_buddy_hits": "buddy_hits",
    "buddylb_sticky_resticks": "resticks", "buddylb_sticky_evictions": "evictions",
    "buddylb_sticky_expirations": "expirations", "buddylb_sticky_unstored": "unstored",
}


def _family(name: str) -> Metric:
    kind, doc, labels = STATE[name]
    cls = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
    return cls(name, doc, labels=list(labels))


class _StateCollector:
    """Reads the balancer's live objects on each scrape; O(contexts + members + targets)."""

    def __init__(self, balancer: "Balancer") -> None:
        self.balancer = balancer

    def collect(self) -> Iterator[Metric]:
        b = self.balancer
        fams = {name: _family(name) for name in STATE}
        for ctx_name, table in b.tables.items():
            fams["buddylb_sticky_entries"].add_metric([ctx_name], table.size)
            fams["buddylb_sticky_capacity"].add_metric([ctx_name], table.max_entries)
            counters = table.counters
            for metric, attr in _STICKY_COUNTERS.items():
                fams[metric].add_metric([ctx_name], getattr(counters, attr))
        for t in b.probe_targets:
            labels = [t.context, t.probe, t.farm, t.rserver]
            fams["buddylb_probe_up"].add_metric(labels, 1 if t.up else 0)
            fams["buddylb_probe_consecutive_failures"].add_metric(labels, t.consecutive_failures)
        state = b.state
        for ctx in b.snapshot.contexts.values():
            for farm in ctx.farms.values():
                for m in farm.members:
                    labels = [ctx.name, farm.name, m.rserver]
                    fams["buddylb_rserver_available"].add_metric(labels, 1 if state.available(m) else 0)
                    fams["buddylb_rserver_open_connections"].add_metric(labels, state.connections(m))
        store = b.store_status
        fams["buddylb_sticky_store_degraded"].add_metric([str(store.get("kind", "memory"))],
                                                         1 if store.get("degraded") else 0)
        fams["buddylb_cluster_nodes"].add_metric([], store.get("cluster_nodes") or 1)
        fams["buddylb_cluster_config_mismatch"].add_metric([], 1 if (store.get("cluster_config_checksums") or 1) > 1 else 0)
        fams["buddylb_open_client_connections"].add_metric([], len(b.flows))
        fams["buddylb_config_generation"].add_metric([], b.snapshot.generation)
        fams["buddylb_reloads"].add_metric([], b.reloads)
        accept = b.accept
        fams["buddylb_maxconn"].add_metric([], accept.maxconn)
        fams["buddylb_accept_paused"].add_metric([], 1 if accept.paused else 0)
        fams["buddylb_accept_pauses"].add_metric([], accept.pauses)
        fams["buddylb_accept_refused"].add_metric([], accept.refused)
        fams["buddylb_accept_failed"].add_metric([], accept.failed)
        for vip, n in sorted(accept.limit_pauses.items()):
            fams["buddylb_vip_conn_limit_pauses"].add_metric([vip], n)
        for vip, n in sorted(accept.limit_dropped.items()):
            fams["buddylb_vip_conn_limit_dropped"].add_metric([vip], n)
        for cause, n in sorted(RATE.totals.items()):
            fams["buddylb_log_events"].add_metric([cause], n)
        for (ctx_name, farm_name, rserver), w in b.inband.windows.items():
            fams["buddylb_inband_failures"].add_metric([ctx_name, farm_name, rserver], w.total)
        acl = b.acl_counters
        for (ctx_name, name, seq), n in acl.hits.items():
            fams["buddylb_acl_hits"].add_metric([ctx_name, name, str(seq)], n)
        for (ctx_name, vip), n in acl.denied.items():
            fams["buddylb_acl_denied"].add_metric([ctx_name, vip], n)
        for (ctx_name, vip, reason), n in b.proxy_refused.items():
            fams["buddylb_proxy_refused"].add_metric([ctx_name, vip, reason], n)
        yield from fams.values()


class _EventCollector:
    """Exports the event counts `Metrics` keeps in plain dicts."""

    def __init__(self, m: "Metrics") -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        decisions = CounterMetricFamily("buddylb_decisions", "Decisions by SPEC §3 outcome.",
                                        labels=["context", "farm", "outcome"])
        for key, n in m.decisions.items():
            decisions.add_metric(list(key), n)
        fams = {
            "connections": CounterMetricFamily("buddylb_connections", "Finished L4 connections.", labels=list(ROUTE)),
            "requests": CounterMetricFamily("buddylb_requests", "Finished L7 requests.", labels=list(ROUTE)),
            "bytes_in": CounterMetricFamily("buddylb_bytes_in", "Bytes received from clients (L7: request "
                                            "heads and bodies).", labels=list(ROUTE)),
            "bytes_out": CounterMetricFamily("buddylb_bytes_out", "Bytes sent to clients (L7: response "
                                             "heads and bodies).", labels=list(ROUTE)),
        }
        for (is_l4, *labels), (count, bytes_in, bytes_out) in m.routes.items():
            fams["connections" if is_l4 else "requests"].add_metric(labels, count)
            fams["bytes_in"].add_metric(labels, bytes_in)
            fams["bytes_out"].add_metric(labels, bytes_out)
        responses = CounterMetricFamily("buddylb_responses", "L7 responses by status class (2xx, 3xx, 4xx, 5xx).",
                                        labels=["vip", "code"])
        for (vip, cls), n in m.responses.items():
            responses.add_metric([vip, f"{cls}xx"], n)
        refused = CounterMetricFamily("buddylb_admin_refused", "Admin API requests and connections refused, by "
                                      "status (408 late, 413 too large, 403 cross-origin, 503 over the cap, ...).",
                                      labels=["code"])
        for status, n in sorted(m.admin_refusals.items()):
            refused.add_metric([str(status)], n)
        yield decisions
        yield from fams.values()
        yield responses
        yield refused


class Metrics:
    def __init__(self, balancer: "Balancer", admin_refusals: dict[int, int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.admin_refusals = admin_refusals if admin_refusals is not None else {}  # status -> count
        self.decisions: dict[tuple[str, str, str], int] = balancer.tally.decisions  # read, never written here
        tally = balancer.tally
        self.routes: dict[tuple[bool, str, str, str], list[int]] = tally.routes  # -> [count, bytes in, bytes out]
        self.responses: dict[tuple[str, int], int] = tally.responses
        self.registry.register(_EventCollector(self))  # type: ignore[arg-type]
        self.registry.register(_StateCollector(balancer))  # type: ignore[arg-type]
        balancer.access_log = tally.tap(balancer.access_log)  # count each record, then log it

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)
