"""The L7 timer table (SPEC §5; issue 13 item 1): which timeout runs in which phase of a
client connection, and what its expiry does.  Pure data and one pure function: the
exchange machine keeps one deadline per connection and asks `judge` when it passes.

| phase    | timeout       | expiry                                                     |
|----------|---------------|------------------------------------------------------------|
| head     | http-request  | 408 (from the first byte or the accept; more bytes never   |
|          |               | restart it: slowloris)                                      |
| idle     | keep-alive    | silent close                                               |
| exchange | client/server | whoever we wait for and is late: 408 (client) / 504        |
|          |               | (server) before the response began, abort both after       |
| linger   | 1 s           | close (after an error response: SPEC §5 lingering close)   |
| tunnel   | tunnel        | abort both sides (no byte either way for that long; after  |
|          |               | a 101 the connection is a byte relay: tunnel.py)           |

During an exchange the client is waited for while its request body is still due and we
are not holding it back, or while it does not read our response; the server is waited
for once it has the whole request, has begun answering or stopped reading what we
write, and while the client reads.  While request body bytes still flow to the server,
the server is never late: `timeout server` is the server's silence.
"""
from __future__ import annotations

HEAD, IDLE, EXCHANGE, LINGER, CLOSED, TUNNEL = "head", "idle", "exchange", "linger", "closed", "tunnel"
REPLY_408, CLOSE, JUDGE = "408", "close", "judge"
LINGER_S = 1.0

TIMERS: dict[str, tuple[str, str]] = {
    HEAD: ("http-request", REPLY_408),
    IDLE: ("keep-alive", CLOSE),
    EXCHANGE: ("client|server", JUDGE),
    LINGER: ("linger", CLOSE),
    TUNNEL: ("tunnel", "abort"),  # tunnel.Tunnel.tick, not the exchange's
}
MIN_STEP_S = 0.05  # never re-arm closer than this (a deadline that just passed)


def judge(now: float, client_s: float, server_s: float, client_waits: bool, server_waits: bool,
          last_client: float, last_server: float) -> tuple[str | None, float]:
    """(who is late: "client", "server" or None; when to look again)."""
    if client_waits and now - last_client >= client_s:
        return "client", now
    if server_waits and now - last_server >= server_s:
        return "server", now
    due = now + min(client_s, server_s)
    if client_waits:
        due = min(due, last_client + client_s)
    if server_waits:
        due = min(due, last_server + server_s)
    return None, max(due, now + MIN_STEP_S)
