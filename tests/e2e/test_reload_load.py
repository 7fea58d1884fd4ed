"""Reload under load (quick version; `make soak` runs it for 60 s) and the sticky
database across a reload, in-process at 100k entries."""
from __future__ import annotations

from collections import Counter

import pytest

from soak import wrk
from soak.reload_load import reload_under_load
from soak.sticky_memory import build_balancer, client_address, decide_clients, write_config
from buddylb.core.decide import Flow


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed (CI: apt-get install wrk)")
@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "new-connection"])
def test_twenty_reloads_under_load_lose_nothing(close, tmp_path):
    # the new-connection load is paced to ~500 connections/s: at full speed its TIME_WAIT
    # ports on 127.0.0.1 would starve later tests that bind loopback ports (soak.wrk.start)
    run = reload_under_load(seconds=6, reloads=20, close=close, workdir=tmp_path, delay_ms=40 if close else 0)
    assert run.reloads_done == 20
    assert run.socket_errors == {} and run.non_2xx == 0, run.as_dict()
    assert run.requests > 100 and run.log_errors == []


def test_hundred_thousand_sticky_entries_survive_a_reload(tmp_path):
    b, vip = build_balancer(tmp_path / "a.cfg", capacity=200_000)
    placed = decide_clients(b, vip, range(100_000))
    table = b.tables["Admin"]
    assert table.size == 100_000
    snap, cfg = b.prepare()
    b.commit(snap, cfg)
    table = b.tables["Admin"]
    assert table.size == 100_000 and b.reloads == 1
    # every client still goes where it went before the reload
    for n in range(0, 100_000, 997):
        d = b.decide(vip, Flow(client_address(n), vip.address))
        assert (d.outcome, d.member.rserver) == ("sticky_hit", placed[n])
        b.closed(d)
    # a reload that removes lnx2 drops exactly lnx2's entries
    write_config(tmp_path / "a.cfg", capacity=200_000, rservers=("lnx1",))
    snap, cfg = b.prepare()
    b.commit(snap, cfg)
    assert b.tables["Admin"].size == Counter(placed.values())["lnx1"]
    assert {e.last_rserver for _, _, e in b.tables["Admin"].items(b.clock())} == {"lnx1"}


def test_keep_alive_connection_follows_a_reload_on_its_next_request(ports, backends, balancer):
    """An L7 request is a flow: after a reload that removes lnx2, the next request of an
    already open keep-alive connection is decided on the new configuration."""
    from tests.e2e.configs import farm, hosts, service, vip_policy
    from tests.e2e.conftest import VIP
    from tests.e2e.test_timeouts import read_response
    from tests.support.net import connect_from, wait_for

    def text(*names: str) -> str:
        return (hosts(*names) + farm("web", [(n, ports[n], None) for n in names])
                + service(vip_policy("v", ports["vip"], "web", http=True, sticky=False)))

    backends.http("lnx1", "127.0.1.11", ports["lnx1"])
    backends.http("lnx2", "127.0.1.12", ports["lnx2"])
    lb = balancer(text("lnx1", "lnx2"))
    s = connect_from("127.0.0.60", VIP, ports["vip"])
    try:
        def names(n: int) -> Counter:
            got = Counter()
            for _ in range(n):
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got[read_response(s).rsplit(b"\r\n\r\n", 1)[1]] += 1
            return got

        assert names(4) == {b"lnx1": 2, b"lnx2": 2}
        lb.reload(text("lnx1"))
        assert wait_for(lambda: lb.api("/info")["data"]["reloads"] == 1, 5)
        assert names(6) == {b"lnx1": 6}
    finally:
        s.close()
