"""Every malformed request of the corpus, sent to a real L7 VIP: refused with its status,
and nothing reaches the backend (SPEC §5; issue 5 item 1)."""
from __future__ import annotations

import socket

from tests.e2e.configs import farm, hosts, service, vip_policy
from tests.e2e.conftest import VIP
from tests.http.test_smuggling_corpus import CORPUS
from tests.support.net import connect_from, read_all


def test_corpus_refused_and_nothing_forwarded(ports, backends, balancer):
    text = hosts("lnx1") + farm("web", [("lnx1", ports["a"], None)])
    text += service(vip_policy("v", ports["vip"], "web", http=True, sticky=False))
    raw_backend = backends.tcp("lnx1", "127.0.1.11", ports["a"])  # records every byte it gets
    balancer(text)
    assert len(CORPUS) >= 40
    wrong = []
    for case in CORPUS:
        s = connect_from("127.0.0.10", VIP, ports["vip"], timeout=5)
        try:
            s.sendall(case.raw)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reply = read_all(s)
        finally:
            s.close()
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None
        if status != case.status:
            wrong.append((case.id, case.status, reply[:60]))
    assert wrong == []
    assert raw_backend.connections == 0 and raw_backend.requests == []


def test_valid_request_still_served_after_the_corpus(ports, backends, balancer):
    text = hosts("lnx1") + farm("web", [("lnx1", ports["a"], None)])
    text += service(vip_policy("v", ports["vip"], "web", http=True, sticky=False))
    backends.http("lnx1", "127.0.1.11", ports["a"])
    balancer(text)
    s = connect_from("127.0.0.10", VIP, ports["vip"])
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_all(s)
    finally:
        s.close()
    assert data.count(b"HTTP/1.1 200") == 2  # pipelined, both answered in order
