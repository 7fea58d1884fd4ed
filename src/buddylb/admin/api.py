"""The admin API: HTTP + JSON behind every SPEC §4 command, plus reload and /metrics.

Routes are a table of (method, first path words) -> handler, each a thin call into
`admin.views` (read-only) or `admin.actions` (mutations, POST only).  Requests are
parsed by buddylb's own strict HTTP layer.  Errors map to statuses at one place:
CommandError -> 404/400, bad token -> 401, a mutation by GET -> 405.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from buddylb.admin import actions, views
from buddylb.admin.security import split_addr, token_ok
from buddylb.errors import CommandError, ProtocolError
from buddylb.http.request import BodyChunk, EndOfMessage, RequestHead, RequestParser
from buddylb.http.response import error_response
from buddylb.metrics import Metrics

if TYPE_CHECKING:
    from buddylb.io.server import Server

log = logging.getLogger("buddylb.admin")
MAX_BODY = 64 * 1024

Handler = Callable[["Server", list[str], dict[str, str], dict], Any]


def _q(query: dict[str, str], name: str) -> str | None:
    v = query.get(name)
    return v if v not in (None, "") else None


def _show_sticky_database(s: "Server", args, q, body):
    b = s.balancer
    return views.show_sticky_database(b.snapshot, b.tables, b.clock(), buddy=q.get("buddy") in ("1", "true"),
                                      context=_q(q, "context"), group=_q(q, "group"), client=_q(q, "client"))


def _show_sticky_client(s: "Server", args, q, body):
    if not args:
        raise CommandError("show sticky client needs an ADDRESS", 2)
    b = s.balancer
    return views.show_sticky_client(b.snapshot, b.state, b.tables, b.clock(), args[0], context=_q(q, "context"))


def _show_rserver(s: "Server", args, q, body):
    b = s.balancer
    return views.show_rserver(b.snapshot, b.state, args[0] if args else None, context=_q(q, "context"))


def _show_serverfarm(s: "Server", args, q, body):
    b = s.balancer
    return views.show_serverfarm(b.snapshot, b.state, args[0] if args else None, context=_q(q, "context"))


def _show_stats_sticky(s: "Server", args, q, body):
    b = s.balancer
    return views.show_stats_sticky(b.snapshot, b.tables, context=_q(q, "context"), store=b.store_status)


def _show_buddy_group(s: "Server", args, q, body):
    return views.show_buddy_group(s.balancer.snapshot, args[0] if args else None, context=_q(q, "context"))


def _show_probe(s: "Server", args, q, body):
    b = s.balancer
    return views.show_probe(b.snapshot, b.probe_targets, args[0] if args else None)


def _clear_sticky_database(s: "Server", args, q, body):
    b = s.balancer
    n = actions.clear_sticky_database(b.snapshot, b.tables, context=body.get("context"), group=body.get("group"),
                                      key=body.get("key"), rserver=body.get("rserver"))
    return {"removed": n}


def _set_rserver(s: "Server", args, q, body):
    if not args or "inservice" not in body:
        raise CommandError('set rserver needs NAME and {"inservice": true|false}', 2)
    b = s.balancer
    ctxs = actions.set_rserver_state(b.snapshot, b.state, args[0], bool(body["inservice"]), body.get("context"))
    return {"rserver": args[0], "inservice": bool(body["inservice"]), "contexts": ctxs}


async def _reload(s: "Server", args, q, body):
    ok, messages = await s.reload()
    return {"reloaded": ok, "messages": messages, "generation": s.balancer.snapshot.generation}


def _info(s: "Server", args, q, body):
    b = s.balancer
    return {"config": str(b.config_path), "generation": b.snapshot.generation, "reloads": b.reloads,
            "vips": [v.name for v in b.snapshot.vips.values()], "open_connections": len(b.flows)}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "show/sticky-database"): _show_sticky_database,
    ("GET", "show/sticky-client"): _show_sticky_client,
    ("GET", "show/rserver"): _show_rserver,
    ("GET", "show/serverfarm"): _show_serverfarm,
    ("GET", "show/stats-sticky"): _show_stats_sticky,
    ("GET", "show/buddy-group"): _show_buddy_group,
    ("GET", "show/probe"): _show_probe,
    ("GET", "info"): _info,
    ("POST", "clear/sticky-database"): _clear_sticky_database,
    ("POST", "set/rserver"): _set_rserver,
    ("POST", "reload"): _reload,
}


def _response(status: int, payload: bytes, ctype: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\ncache-control: no-store\r\n\r\n"
            % (status, {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found",
                        405: b"Method Not Allowed", 500: b"Internal Server Error"}.get(status, b"Error"),
               ctype, len(payload)) + payload)


def _json(status: int, data: Any) -> bytes:
    return _response(status, json.dumps(data, default=str).encode())


class AdminProtocol(asyncio.Protocol):
    def __init__(self, admin: "AdminServer") -> None:
        self.admin = admin
        self.parser = RequestParser()
        self.head: RequestHead | None = None
        self.body = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self.transport.write(error_response(exc.status))
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, RequestHead):
                self.head, self.body = ev, bytearray()
            elif isinstance(ev, BodyChunk):
                self.body += ev.data
                if len(self.body) > MAX_BODY:
                    self.transport.write(_json(400, {"error": "request body too large"}))
                    self.transport.close()
                    return
            elif isinstance(ev, EndOfMessage) and self.head is not None:
                head, body = self.head, bytes(self.body)
                self.head = None
                asyncio.get_running_loop().create_task(self._answer(head, body))

    async def _answer(self, head: RequestHead, body: bytes) -> None:
        assert self.transport is not None
        out = await self.admin.dispatch(head, body)
        if not self.transport.is_closing():
            self.transport.write(out)
            if not head.keep_alive:
                self.transport.close()


class AdminServer:
    def __init__(self, server: "Server", addr: str, token: str | None) -> None:
        self.server = server
        self.addr = addr
        self.token = token
        self.aserver: asyncio.AbstractServer | None = None
        self.metrics: Callable[[], bytes] | None = None

    async def start(self) -> None:
        from buddylb.errors import LbError

        host, port = split_addr(self.addr)
        try:
            self.aserver = await asyncio.get_running_loop().create_server(
                lambda: AdminProtocol(self), host, port, reuse_address=True)
        except OSError as exc:
            raise LbError(f"admin API cannot listen on {self.addr}: {exc.strerror or exc}") from exc
        self.metrics = Metrics(self.server.balancer).render
        log.info("admin API on http://%s", self.addr)

    async def stop(self) -> None:
        if self.aserver is not None:
            self.aserver.close()

    async def dispatch(self, head: RequestHead, body: bytes) -> bytes:
        auth = head.header(b"authorization")
        presented = None
        if auth and auth.lower().startswith(b"bearer "):
            presented = auth[7:].strip().decode("latin-1")
        if not token_ok(self.token, presented):
            return _json(401, {"error": "missing or wrong admin token"})
        url = urlsplit(head.target.decode("latin-1"))
        words = [unquote(w) for w in url.path.strip("/").split("/") if w]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        method = head.method.decode("latin-1")
        if words == ["metrics"] and method == "GET" and self.metrics is not None:
            return _response(200, self.metrics(), b"text/plain; version=0.0.4; charset=utf-8")
        route = "/".join(words[:2]) if words[:1] in (["show"], ["clear"], ["set"]) else "/".join(words[:1])
        args = words[2:] if words[:1] in (["show"], ["clear"], ["set"]) else words[1:]
        handler = ROUTES.get((method, route))
        if handler is None:
            if any(r == route for _, r in ROUTES):
                return _json(405, {"error": f"{route} does not accept {method}; mutations need POST"})
            return _json(404, {"error": f"no such command: {route or '/'}"})
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return _json(400, {"error": f"invalid JSON body: {exc}"})
        try:
            result = handler(self.server, args, query, payload)
            if isinstance(result, Awaitable):
                result = await result
        except CommandError as exc:
            return _json(404 if "does not exist" in str(exc) else 400, {"error": str(exc)})
        return _json(200, {"ok": True, "data": result})
