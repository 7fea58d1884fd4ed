"""Smoke test of the WebSocket bench (bench/websocket.py) with tiny bounds: the
precomputed frames are a real WebSocket exchange, the client's count bound holds, and
the report renders.  No timing assertions."""
from __future__ import annotations

import asyncio

from bench import report, websocket


def test_client_and_echo_backend_talk_websocket_and_stop_at_the_count_bound(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(websocket.EchoServer, "127.0.1.11", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await websocket.load("127.0.1.11", port, 3, 10, 40)
        finally:
            server.close()
    r = asyncio.run(main())
    assert r["messages"] == 3 * 40 and r["errors"] == 0  # the count bound ends it, long before 10 s


def test_frames_are_valid_websocket_frames():
    c, s = websocket.CLIENT_FRAME, websocket.SERVER_FRAME
    assert c[0] == s[0] == 0x81  # FIN + text
    assert c[1] == 0x80 | len(websocket.PAYLOAD) and s[1] == len(websocket.PAYLOAD)  # client frames are masked
    mask = c[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(c[6:])) == s[2:]  # the echo is the same text


def test_report_renders_the_websocket_section():
    one = {"messages": 1000, "messages_per_s": 500.0, "balancer_cpu_pct": 40.0, "balancer_cpu_us_per_message": 80.0,
           "errors": 0}
    res = {"meta": {"machine": {"date": "d"}}, "sections": {"websocket": {
        "settings": {"connections": 50, "seconds": 3, "payload_bytes": 64, "load_pin": "x", "balancer_pin": "y"},
        "buddylb": one, "haproxy": one | {"messages_per_s": 1000.0}, "ceiling": {"error": "RuntimeError: boom"},
        "measured": {"date": "d"}}}}
    text = "\n".join(report._websocket(res))
    assert "WebSocket echo" in text and "| messages/s | 500 | 1,000 | – | 0.50× |" in text
    assert "ceiling failed" in text
