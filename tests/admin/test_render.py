"""Golden text of every renderer in admin/render.py, fed with fixed view data (SPEC §4).

The data has the shape `admin.views` returns (what `--json` prints); the expected text is
inline, so any change to a table shows up here as a reviewable diff.
"""
from __future__ import annotations

import pytest

from buddylb.admin import render as r

DB = [
    {"context": "Admin", "scope": "alpha", "type": "ip-netmask", "key": "127.0.0.21->127.0.0.100",
     "last_serverfarm": "decrypted", "last_rserver": "lnx1", "serverfarms": {"http": "lnx1", "decrypted": "lnx1"},
     "expires_in_s": 1799.5, "open_connections": 0, "flags": ["buddy"]},
    {"context": "Admin", "scope": "stick-solo", "type": "ip-netmask", "key": "127.0.0.0/24",
     "last_serverfarm": "http", "last_rserver": "lnx2", "serverfarms": {"http": "lnx2"},
     "expires_in_s": None, "open_connections": 2, "flags": []},
]
CLIENT = [
    {"context": "Admin", "scope": "alpha", "buddy": True, "key": "127.0.0.21->127.0.0.100",
     "entry": {"key": "127.0.0.21->127.0.0.100", "last_serverfarm": "decrypted", "last_rserver": "lnx1",
               "serverfarms": {"http": "lnx1", "decrypted": "lnx1"}, "expires_in_s": 1799.5, "open_connections": 0},
     "serverfarms": [
         {"serverfarm": "http", "outcome": "buddy_hit", "rule": "4: remembered rserver in buddy group blue",
          "rserver": "lnx1", "port": 8080, "candidates": [], "predictor": None, "available": ["lnx1", "lnx2"]},
         {"serverfarm": "decrypted", "outcome": "sticky_hit", "rule": "3: last farm and rserver available",
          "rserver": "lnx1", "port": 8443, "candidates": [], "predictor": None, "available": ["lnx1", "lnx2"]}]},
    {"context": "Admin", "scope": "stick-solo", "buddy": False, "key": "127.0.0.0/24", "entry": None,
     "serverfarms": [
         {"serverfarm": "http", "outcome": "new", "rule": "2: no entry, predictor", "rserver": None, "port": None,
          "candidates": ["lnx1", "lnx2"], "predictor": "roundrobin", "available": ["lnx1", "lnx2"]}]},
]
FARMS = [
    {"context": "Admin", "serverfarm": "http", "predictor": "roundrobin", "probes": ["TCP-CHECK"],
     "fail_action_purge": False, "rservers": [
         {"rserver": "lnx1", "address": "127.0.1.11", "port": 8080, "weight": 8, "state": "OPERATIONAL",
          "backup": False, "buddy_group": "blue", "connections": 3, "conn_limit": None},
         {"rserver": "lnx2", "address": "127.0.1.12", "port": 8080, "weight": 3, "state": "PROBE-FAILED",
          "backup": True, "buddy_group": None, "connections": 0, "conn_limit": {"max": 100, "min": 80}}]},
]
RSERVERS = [
    {"context": "Admin", "rserver": "lnx1", "address": "127.0.1.11", "host_weight": 8, "admin_state": "INSERVICE",
     "state": "PROBE-FAILED(http)", "operator_out": False, "connections": 3, "serverfarms": [
         {"serverfarm": "http", "port": 8080, "weight": 50, "buddy_group": "blue", "state": "PROBE-FAILED",
          "connections": 3},
         {"serverfarm": "decrypted", "port": 8443, "weight": 8, "buddy_group": "blue", "state": "OPERATIONAL",
          "connections": 0}]},
    {"context": "Admin", "rserver": "lnx2", "address": "127.0.1.12", "host_weight": 8, "admin_state": "OUTOFSERVICE",
     "state": "OUTOFSERVICE", "operator_out": True, "connections": 0, "serverfarms": []},
]
STATS = [
    {"context": "Admin", "entries": 5, "capacity": 1048576, "hits": 7, "misses": 5, "buddy_hits": 5,
     "resticks": 1, "evictions": 0, "expirations": 2, "unstored": 0, "no_server": 0, "buddy_connections": 5,
     "buddy_sticky_groups": 1, "store": {"kind": "redis", "degraded": True}},
]
BUDDY = {
    "buddy_real_groups": [
        {"context": "Admin", "name": "blue", "serverfarms": {"http": ["lnx1"], "decrypted": ["lnx1"]},
         "single_farm": False},
        {"context": "Admin", "name": "green", "serverfarms": {"web": ["lnx3", "lnx4"]}, "single_farm": True}],
    "buddy_sticky_groups": [
        {"context": "Admin", "name": "alpha", "buddy": True, "kind": "ip-netmask", "address": "both",
         "effective_mask": "255.255.255.0", "effective_v6_prefix": 64, "effective_timeout_s": 1800.0,
         "activeconns": False, "sticky_groups": ["stick-cart", "stick-credit"], "farms": ["http", "decrypted"],
         "cookie": None, "cookie_insert": False, "header": None}],
}
PROBES = [
    {"context": "Admin", "probe": "TCP-CHECK", "serverfarm": "http", "rserver": "lnx1", "address": "127.0.1.11",
     "port": 8080, "state": "UP", "last_result": "success", "detail": "connected", "consecutive_failures": 0,
     "checks": 12, "latency_ms": 0.41,
     "history": [{"ts": 1764600000.25, "result": "success", "detail": "connected", "latency_ms": 0.52},
                 {"ts": 1764600002.5, "result": "success", "detail": "connected", "latency_ms": 0.41}]},
    {"context": "Admin", "probe": "TCP-CHECK", "serverfarm": "http", "rserver": "lnx2", "address": "127.0.1.12",
     "port": 8080, "state": "DOWN", "last_result": "failure", "detail": "connect: refused",
     "consecutive_failures": 4, "checks": 12, "latency_ms": 1.2,
     "history": [{"ts": 1764600000.0, "result": "success", "detail": "connected", "latency_ms": 0.6},
                 {"ts": 1764600002.0, "result": "not run", "detail": "connect: not run here (EMFILE)",
                  "latency_ms": None},
                 {"ts": 1764600004.0, "result": "failure", "detail": "connect: refused", "latency_ms": 1.2}]},
]

CLUSTER = {"nodes": [{"id": "lb1:9180", "address": "127.0.0.1:9180", "version": "0.1.0",
                      "config_checksum": "9f2c4e1d0a7b3c55", "generation": 3, "entries": 1200, "decisions_per_s": 85.5,
                      "age_s": 0.0, "self": True},
                     {"id": "lb2:9181", "address": "127.0.0.1:9181", "version": "0.1.0",
                      "config_checksum": "41aa07e9c2d85b10", "generation": 1, "entries": 1187, "decisions_per_s": 80.0,
                      "age_s": 1.4, "self": False}],
           "warnings": ["configurations differ (41aa07e9c2d85b10: lb2:9181; 9f2c4e1d0a7b3c55: lb1:9180)"],
           "config_checksums": 2}

STICKY_DATABASE = """\
sticky database: 2 entries
context  scope       type        key                      last farm  last rserver  rserver per farm          expires(s)  conns  flags
-------  ----------  ----------  -----------------------  ---------  ------------  ------------------------  ----------  -----  -----
Admin    alpha       ip-netmask  127.0.0.21->127.0.0.100  decrypted  lnx1          http=lnx1,decrypted=lnx1  1799.5      0      buddy
Admin    stick-solo  ip-netmask  127.0.0.0/24             http       lnx2          http=lnx2                 active      2      -
"""

STICKY_DATABASE_EMPTY = """\
sticky database: 0 entries
context  scope  type  key  last farm  last rserver  rserver per farm  expires(s)  conns  flags
-------  -----  ----  ---  ---------  ------------  ----------------  ----------  -----  -----
"""

STICKY_CLIENT = """\
context Admin  scope alpha (buddy)  key 127.0.0.21->127.0.0.100
  entry: last decrypted/lnx1  per farm http=lnx1,decrypted=lnx1  expires(s) 1799.5  conns 0
  serverfarm  would get  outcome     rule (README: How buddy resolution decides)
  ----------  ---------  ----------  -------------------------------------------
  http        lnx1       buddy_hit   4: remembered rserver in buddy group blue
  decrypted   lnx1       sticky_hit  3: last farm and rserver available

context Admin  scope stick-solo  key 127.0.0.0/24
  entry: none (a new client here)
  serverfarm  would get                outcome  rule (README: How buddy resolution decides)
  ----------  -----------------------  -------  -------------------------------------------
  http        roundrobin of lnx1,lnx2  new      2: no entry, predictor
"""

STICKY_CLIENT_NO_SCOPE = """\
no sticky scope keys this client
"""

SERVERFARM = """\
serverfarm http (context Admin)  predictor roundrobin  probes TCP-CHECK
  rserver  address     port  weight  state         buddy group  conns
  -------  ----------  ----  ------  ------------  -----------  -----
  lnx1     127.0.1.11  8080  8       OPERATIONAL   blue         3
  lnx2     127.0.1.12  8080  3       PROBE-FAILED  -            0
"""

SERVERFARM_DETAIL = """\
serverfarm http (context Admin)  predictor roundrobin  probes TCP-CHECK
  rserver  address     port  weight  state         buddy group  conns  backup  conn-limit
  -------  ----------  ----  ------  ------------  -----------  -----  ------  --------------
  lnx1     127.0.1.11  8080  8       OPERATIONAL   blue         3      no      -
  lnx2     127.0.1.12  8080  3       PROBE-FAILED  -            0      yes     max=100,min=80
"""

RSERVER = """\
context  rserver  address     admin         state               conns  serverfarm:weight
-------  -------  ----------  ------------  ------------------  -----  -------------------
Admin    lnx1     127.0.1.11  INSERVICE     PROBE-FAILED(http)  3      http:50,decrypted:8
Admin    lnx2     127.0.1.12  OUTOFSERVICE  OUTOFSERVICE        0      -
"""

RSERVER_DETAIL = """\
rserver lnx1 (context Admin)  127.0.1.11  host weight 8  admin INSERVICE  state PROBE-FAILED(http)  conns 3
  serverfarm  port  weight  buddy group  state         conns
  ----------  ----  ------  -----------  ------------  -----
  http        8080  50      blue         PROBE-FAILED  3
  decrypted   8443  8       blue         OPERATIONAL   0

rserver lnx2 (context Admin)  127.0.1.12  host weight 8  admin OUTOFSERVICE  state OUTOFSERVICE  conns 0
  serverfarm  port  weight  buddy group  state  conns
  ----------  ----  ------  -----------  -----  -----
"""

STATS_STICKY = """\
sticky statistics, context Admin (store redis, DEGRADED)
  entries                5
  capacity               1048576
  hits                   7
  misses                 5
  buddy hits             5
  resticks               1
  evictions              0
  expirations            2
  unstored               0
  no server              0
  buddy sticky groups    1
  buddy connections      5
"""

BUDDY_GROUP = """\
context  buddy real group  serverfarm: rservers
-------  ----------------  ---------------------------
Admin    blue              http: lnx1; decrypted: lnx1
Admin    green (one farm)  web: lnx3,lnx4

context  buddy sticky group  type        sticky groups            serverfarms     effective mask  effective timeout(s)
-------  ------------------  ----------  -----------------------  --------------  --------------  --------------------
Admin    alpha               ip-netmask  stick-cart,stick-credit  http,decrypted  255.255.255.0   1800
"""

BUDDY_GROUP_DETAIL = """\
context  buddy real group  serverfarm: rservers
-------  ----------------  ---------------------------
Admin    blue              http: lnx1; decrypted: lnx1
Admin    green (one farm)  web: lnx3,lnx4

context  buddy sticky group  type        sticky groups            serverfarms     effective mask  effective timeout(s)  v6 prefix  activeconns
-------  ------------------  ----------  -----------------------  --------------  --------------  --------------------  ---------  -----------
Admin    alpha               ip-netmask  stick-cart,stick-credit  http,decrypted  255.255.255.0   1800                  64         no
"""

PROBE = """\
probe      serverfarm  rserver  address     port  state  last result  ms    fails  checks  recent (oldest first)
---------  ----------  -------  ----------  ----  -----  -----------  ----  -----  ------  ---------------------
TCP-CHECK  http        lnx1     127.0.1.11  8080  UP     success      0.41  0      12      ++
TCP-CHECK  http        lnx2     127.0.1.12  8080  DOWN   failure      1.2   4      12      +.X
"""

PROBE_DETAIL = PROBE + """
probe TCP-CHECK rserver lnx1 in serverfarm http (context Admin)
time (UTC, newest first)  result   ms    detail
------------------------  -------  ----  ---------
14:40:02.500              success  0.41  connected
14:40:00.250              success  0.52  connected

probe TCP-CHECK rserver lnx2 in serverfarm http (context Admin)
time (UTC, newest first)  result   ms   detail
------------------------  -------  ---  ------------------------------
14:40:04.000              failure  1.2  connect: refused
14:40:02.000              not run  -    connect: not run here (EMFILE)
14:40:00.000              success  0.6  connected
"""

IMPACT = {"rserver": "lnx1", "action": "outofservice", "contexts": ["Admin"], "serverfarms": [
    {"context": "Admin", "serverfarm": "http", "scope": "alpha", "entries": 6, "stay": 0, "open_connections": 1,
     "follow_buddy": 0, "restick": 6, "keep": 0, "no_server": 0, "outcomes": {"restick": 6},
     "predictor": "roundrobin", "to": {"lnx2": 3.0, "lnx3": 3.0}, "new_clients": {"lnx2": 0.5, "lnx3": 0.5},
     "connections": 1},
    {"context": "Admin", "serverfarm": "decrypted", "scope": "alpha", "entries": 6, "stay": 0, "open_connections": 0,
     "follow_buddy": 6, "restick": 0, "keep": 0, "no_server": 0, "outcomes": {"buddy_hit": 6},
     "predictor": "roundrobin", "to": {"lnx4": 6.0}, "new_clients": {"lnx4": 1.0}, "connections": 0}],
    "totals": {"entries": 12, "stay": 0, "follow_buddy": 6, "restick": 6, "keep": 0, "no_server": 0,
               "open_connections": 1, "connections": 1}}

IMPACT_TEXT = """\
impact of rserver lnx1 out of service: 12 entries name it; 6 follow a buddy, 6 re-stick, 0 have no server; \
1 open connections finish where they are
context  serverfarm  scope  entries  stay  follow buddy  restick  keep  no server  to (by rule; predictor by weight)  new clients        conns
-------  ----------  -----  -------  ----  ------------  -------  ----  ---------  ---------------------------------  -----------------  -----
Admin    http        alpha  6        0     0             6        0     0          lnx2=3,lnx3=3                      lnx2=50%,lnx3=50%  1
Admin    decrypted   alpha  6        0     6             0        0     0          lnx4=6                             lnx4=100%          0
"""


STORE = {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": "shop:", "degraded": False, "errors": 2,
         "last_error": "TimeoutError: ", "repairs": 20, "keys": 1201, "used_memory": 1250000, "cluster_nodes": 2,
         "anti_entropy": {"passes": 1, "written": 1180, "kept": 3, "last_reason": "marker missing (Redis emptied)"}}
STATS_STICKY_REDIS = """\
sticky statistics, context Admin (store redis)
  entries                5
  capacity               1048576
  hits                   7
  misses                 5
  buddy hits             5
  resticks               1
  evictions              0
  expirations            2
  unstored               0
  no server              0
  buddy sticky groups    1
  buddy connections      5
  store                  redis://127.0.0.1:6379/0 prefix shop:
  store keys             1201 (used memory 1250000)
  store errors           2 (last: TimeoutError: )
  read repairs           20
  write-back passes      1 (1180 written, 3 kept; last: marker missing (Redis emptied))
  cluster nodes          2
"""

CLUSTER_TEXT = """\
cluster: 2 node(s) sharing the sticky store
node       address         version  config checksum   generation  entries  decisions/s  age (s)
---------  --------------  -------  ----------------  ----------  -------  -----------  -------
*lb1:9180  127.0.0.1:9180  0.1.0    9f2c4e1d0a7b3c55  3           1200     85.5         0
lb2:9181   127.0.0.1:9181  0.1.0    41aa07e9c2d85b10  1           1187     80           1.4
WARNING: configurations differ (41aa07e9c2d85b10: lb2:9181; 9f2c4e1d0a7b3c55: lb1:9180)
"""

ACL = {"access_lists": [{"context": "Admin", "name": "WEB", "lines": [
    {"line": 8, "config_line": 1, "action": "deny", "text": "deny tcp host 127.0.0.66 any", "hits": 1},
    {"line": 16, "config_line": 2, "action": "permit", "text": "permit tcp 127.0.0.0 255.255.255.192 any eq 80",
     "hits": 41}]}],
    "vips": [{"context": "Admin", "vip": "127.0.0.100:80", "access_lists": ["WEB"], "denied": 3, "implicit_deny": 2}]}
ACCESS_LIST = """\
context  access-list  line  rule                                            hits
-------  -----------  ----  ----------------------------------------------  ----
Admin    WEB          8     deny tcp host 127.0.0.66 any                    1
Admin    WEB          16    permit tcp 127.0.0.0 255.255.255.192 any eq 80  41

context  VIP             access-groups  denied  implicit deny
-------  --------------  -------------  ------  -------------
Admin    127.0.0.100:80  WEB            3       2
"""


@pytest.mark.parametrize("rendered, expected", [
    pytest.param(lambda: r.render_sticky_database(DB), STICKY_DATABASE, id="sticky_database"),
    pytest.param(lambda: r.render_sticky_database([]), STICKY_DATABASE_EMPTY, id="sticky_database_empty"),
    pytest.param(lambda: r.render_sticky_client(CLIENT), STICKY_CLIENT, id="sticky_client"),
    pytest.param(lambda: r.render_sticky_client([]), STICKY_CLIENT_NO_SCOPE, id="sticky_client_no_scope"),
    pytest.param(lambda: r.render_serverfarm(FARMS), SERVERFARM, id="serverfarm"),
    pytest.param(lambda: r.render_serverfarm(FARMS, detail=True), SERVERFARM_DETAIL, id="serverfarm_detail"),
    pytest.param(lambda: r.render_rserver(RSERVERS), RSERVER, id="rserver"),
    pytest.param(lambda: r.render_rserver(RSERVERS, detail=True), RSERVER_DETAIL, id="rserver_detail"),
    pytest.param(lambda: r.render_stats_sticky(STATS), STATS_STICKY, id="stats_sticky"),
    pytest.param(lambda: r.render_buddy_group(BUDDY), BUDDY_GROUP, id="buddy_group"),
    pytest.param(lambda: r.render_buddy_group(BUDDY, detail=True), BUDDY_GROUP_DETAIL, id="buddy_group_detail"),
    pytest.param(lambda: r.render_probe(PROBES), PROBE, id="probe"),
    pytest.param(lambda: r.render_probe(PROBES, detail=True), PROBE_DETAIL, id="probe_detail"),
    pytest.param(lambda: r.render_cluster(CLUSTER), CLUSTER_TEXT, id="cluster"),
    pytest.param(lambda: r.render_stats_sticky([dict(STATS[0], store=STORE)]), STATS_STICKY_REDIS, id="stats_redis"),
    pytest.param(lambda: r.render_access_list(ACL), ACCESS_LIST, id="access_list"),
    pytest.param(lambda: r.render_impact(IMPACT), IMPACT_TEXT, id="impact"),
])
def test_golden(rendered, expected) -> None:
    assert rendered() == expected


def test_every_renderer_is_pinned() -> None:
    assert set(r.RENDERERS) == {"sticky-database", "sticky-client", "serverfarm", "rserver", "stats-sticky",
                                "buddy-group", "probe", "cluster",
                                "access-list", "impact"}
