"""The admin API answers every malformed request with a 4xx (issue 13, "Done when"), not
only the hand-picked ones of test_gate.py: Hypothesis mutates valid admin requests
(bytes replaced, inserted, deleted, lines duplicated, the head cut short) and each
mutant, sent to a real Gate on loopback, must get either the stand-in dispatch's 200
(the mutant is still a valid request) or a JSON 4xx / 505 that never reached dispatch,
within the gate's deadlines. A connection that sent only blank lines may close silently
(an idle client). Deadlines are the short ones of test_gate.py, so a mutant whose head
or body never completes costs 0.3 s, and the examples are bounded.
"""
from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.admin.test_gate import Served, run

VALID = [
    b"GET /info HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n\r\n",
    b"POST /set/rserver/lnx1 HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nContent-Type: application/json\r\n"
    b"Content-Length: 19\r\n\r\n{\"inservice\": true}",
    b"POST /clear/sticky-database HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"GET /show/rserver?context=Admin HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: close\r\n\r\n",
]
NASTY = [b"\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"\t", b"%", b"\xff", b"Content-Length: 5\r\n",
         b"Transfer-Encoding: chunked\r\n", b"Host: evil.example\r\n", b"Origin: http://evil.example\r\n",
         b"9999999999999999999", b"-1", b"HTTP/1.0", b"[" * 100, b"\"", b"{"]


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["replace", "insert", "delete", "nasty", "cut"]))
        if kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 6))]
        elif kind == "nasty":
            data[at:at] = draw(st.sampled_from(NASTY))
        elif kind == "cut":
            del data[at:]
    return bytes(data)


async def first_reply(reader: asyncio.StreamReader) -> tuple[int, dict] | None:
    """(status, JSON body) of the first response, or None when the gate closed silently."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3.0)
    except asyncio.IncompleteReadError as exc:
        assert exc.partial == b"", exc.partial  # a close may not cut a response in half
        return None
    except ConnectionResetError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    assert fields["content-type"] == "application/json", head
    body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), 3.0)
    return int(lines[0].split()[1]), json.loads(body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutants())
def test_every_mutant_of_a_valid_request_gets_200_or_a_json_4xx(raw: bytes) -> None:
    async def go() -> None:
        async with Served() as s:
            r, w = await s.open()
            w.write(raw.replace(b"PORT", str(s.port).encode()))
            await w.drain()
            got = await first_reply(r)
            w.close()
            if got is None:  # silence only for a client that never sent a request's bytes
                assert raw.strip(b"\r\n") == b"", raw
                event("closed silently")
                return
            status, body = got
            event(f"status {status}")  # --hypothesis-show-statistics: the answers the mutants got
            if status == 200:
                assert body["ok"] and len(s.seen) >= 1
            else:
                assert 400 <= status < 500 or status == 505, (status, raw)
                assert body["error"], body
                assert s.seen == [], (status, raw, s.seen)  # a refused request never reaches dispatch
    run(go())
