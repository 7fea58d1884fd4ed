"""The admin API: HTTP + JSON behind every SPEC §4 command, plus reload and /metrics.

Endpoints are one registry (`ENDPOINTS`): method, path words, the `Shape` of their input
(admin/schema.py) and a thin handler into `admin.views` (read-only) or `admin.actions`
(mutations, POST only).  Every request first passes `admin.gate` (connection cap,
deadlines, size, Host / Origin / Content-Type), then the token, then the endpoint's
shape; a handler only sees values of the declared types.  Errors map to statuses at one
place (`dispatch`): CommandError -> 404/400, BadInput -> 400, bad token -> 401, a
mutation by GET -> 405; every answer is JSON, an unexpected exception a logged 500.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from buddylb.admin import acls, actions, dashboard, explain, fanout, views
from buddylb.admin.gate import Gate, Limits, Screen, error, json_response, response
from buddylb.admin.history import SAMPLE_EVERY_S, History, RefusedReloads
from buddylb.admin.schema import BOOL, FLAG, NAME, BadInput, Shape, parse_body
from buddylb.admin.security import split_addr, token_ok
from buddylb.errors import CommandError
from buddylb.http.request import RequestHead
from buddylb.metrics import Metrics

if TYPE_CHECKING:
    from buddylb.admin.ops import Operations as Server  # the narrow interface, not app.Server

log = logging.getLogger("buddylb.admin")

Handler = Callable[["Server", list[str], dict[str, Any], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Raw:
    """A handler's answer that is not the JSON envelope (metrics text, a page)."""

    body: bytes
    ctype: bytes


def _q(query: dict[str, Any], name: str) -> Any:
    return query.get(name)


def _show_sticky_database(s: "Server", args, q, body):
    b = s.balancer
    return views.show_sticky_database(b.snapshot, b.tables, b.clock(), buddy=bool(q.get("buddy")),
                                      context=_q(q, "context"), group=_q(q, "group"), client=_q(q, "client"),
                                      farm=_q(q, "farm"), rserver=_q(q, "rserver"), limit=_q(q, "limit"),
                                      cursor=_q(q, "cursor"))


def _show_sticky_client(s: "Server", args, q, body):
    b = s.balancer
    return explain.show_sticky_client(b.snapshot, b.state, b.tables, b.clock(), args[0],
                                      context=_q(q, "context"), secret=b.secret, wall=time.time())


def _show_impact(s: "Server", args, q, body):
    if args[0] != "rserver":
        raise CommandError("show impact needs: rserver NAME", 2)
    b = s.balancer
    return explain.show_impact(b.snapshot, b.state, b.tables, b.clock(), args[1], farm=_q(q, "farm"),
                               context=_q(q, "context"), action=q.get("action") or "outofservice")


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
    return views.show_probe(b.snapshot, b.probe_targets, s.prober.results, args[0] if args else None)


async def _show_cluster(s: "Server", args, q, body):
    return await s.balancer.store.cluster(s.node_info())


def _show_access_list(s: "Server", args, q, body):
    b = s.balancer
    return acls.show_access_list(b.snapshot, b.acl_counters, args[0] if args else None)


def _clear_sticky_database(s: "Server", args, q, body):
    b = s.balancer
    n = actions.clear_sticky_database(b.snapshot, b.tables, context=body.get("context"), group=body.get("group"),
                                      key=body.get("key"), rserver=body.get("rserver"))
    return {"removed": n}


def _set_rserver(s: "Server", args, q, body):
    """`{"state": "inservice"|"outofservice"|"drain"}`, or the older `{"inservice": true|false}`."""
    if "state" not in body and "inservice" not in body:
        raise BadInput('missing field "state" (inservice, outofservice or drain)')
    if "state" in body and "inservice" in body:
        raise BadInput('give exactly one of "state" (inservice, outofservice or drain) and "inservice" (a boolean)')
    admin = body["state"] if "state" in body else ("inservice" if body["inservice"] else "outofservice")
    if admin not in actions.ADMIN_STATES:
        raise BadInput(f'field "state" must be one of: {", ".join(actions.ADMIN_STATES)}')
    b = s.balancer
    ctxs = actions.set_rserver_state(b.snapshot, b.state, args[0], admin, body.get("context"))
    return {"rserver": args[0], "state": admin, "inservice": admin != "outofservice", "contexts": ctxs}


async def _reload(s: "Server", args, q, body):
    ok, messages = await s.reload()
    if not ok and s.admin is not None:
        s.admin.history.add(time.time(), "reload-refused", "; ".join(messages) or "reload refused")
    return {"reloaded": ok, "messages": messages, "generation": s.balancer.snapshot.generation}


def _info(s: "Server", args, q, body):
    b = s.balancer
    return {"config": str(b.config_path), "generation": b.snapshot.generation, "reloads": b.reloads,
            "vips": [v.name for v in b.snapshot.vips.values()], "open_connections": len(b.flows)}


def _dashboard(s: "Server", args, q, body):
    """The dashboard's own views (admin.dashboard); the rest of the page uses show routes."""
    b, history = s.balancer, s.admin.history
    view = args[0]
    if view == "overview":
        return dashboard.overview(b.snapshot, history, len(b.flows))
    if view == "map":
        return dashboard.buddy_map(b.snapshot, b.state, history)
    if view == "sticky":
        try:
            offset, limit = int(q.get("offset") or 0), int(q.get("limit") or 50)
        except ValueError as exc:
            raise BadInput("offset and limit must be integers") from exc
        return dashboard.sticky_page(b.snapshot, b.tables, b.clock(), _q(q, "context"), offset, limit)
    if view == "events":
        return list(history.events)[::-1]
    raise BadInput(f"no such dashboard view: {view}; known: overview, map, sticky, events")


def _metrics(s: "Server", args, q, body):
    return Raw(s.admin.metrics(), b"text/plain; version=0.0.4; charset=utf-8")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # the command words joined by "/": "show/rserver"
    handler: Handler
    shape: Shape = Shape()


CTX = {"context": NAME}
ONE = (1, 1)
OPTIONAL = (0, 1)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "show/sticky-database", _show_sticky_database,
             Shape(query={"buddy": FLAG, "context": NAME, "group": NAME, "client": NAME, "farm": NAME,
                          "rserver": NAME, "limit": NAME, "cursor": NAME})),
    Endpoint("GET", "show/sticky-client", _show_sticky_client,
             Shape(args=ONE, query=CTX, arg_name="ADDRESS or cookie / header VALUE")),
    Endpoint("GET", "show/rserver", _show_rserver, Shape(args=OPTIONAL, query=CTX)),
    Endpoint("GET", "show/serverfarm", _show_serverfarm, Shape(args=OPTIONAL, query=CTX)),
    Endpoint("GET", "show/stats-sticky", _show_stats_sticky, Shape(query=CTX)),
    Endpoint("GET", "show/buddy-group", _show_buddy_group, Shape(args=OPTIONAL, query=CTX)),
    Endpoint("GET", "show/probe", _show_probe, Shape(args=OPTIONAL)),
    Endpoint("GET", "show/cluster", _show_cluster),
    Endpoint("GET", "show/access-list", _show_access_list, Shape(args=OPTIONAL)),
    Endpoint("GET", "show/impact", _show_impact,
             Shape(args=(2, 2), query={"farm": NAME, "context": NAME, "action": NAME}, arg_name="rserver NAME")),
    Endpoint("GET", "info", _info),
    Endpoint("GET", "metrics", _metrics),
    Endpoint("GET", "dashboard", _dashboard,
             Shape(args=ONE, query={"offset": NAME, "limit": NAME, "context": NAME}, arg_name="VIEW")),
    Endpoint("POST", "clear/sticky-database", _clear_sticky_database,
             Shape(body={"context": NAME, "group": NAME, "key": NAME, "rserver": NAME})),
    Endpoint("POST", "set/rserver", _set_rserver,
             Shape(args=ONE, body={"state": NAME, "inservice": BOOL, "context": NAME})),
    Endpoint("POST", "reload", _reload),
)
ROUTES: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}
PATHS = {e.path for e in ENDPOINTS}
VERBS = ("show", "clear", "set")


class AdminServer:
    def __init__(self, server: "Server", addr: str, token: str | None, limits: Limits = Limits(),
                 peers: tuple[str, ...] = ()) -> None:
        self.server = server
        self.peers = peers  # --workers: the other workers' admin addresses (worker 0 only; admin.fanout)
        self.addr = addr
        self.token = token
        self.limits = limits
        self.aserver: asyncio.AbstractServer | None = None
        self.gate: Gate | None = None
        self.metrics: Callable[[], bytes] = lambda: b""
        self.history = History()
        self._sampler: asyncio.Task | None = None
        self._log_handler = RefusedReloads(self.history, time.time)

    async def start(self) -> None:
        from buddylb.errors import LbError

        host, port = split_addr(self.addr)
        loop = asyncio.get_running_loop()
        try:
            self.aserver = await loop.create_server(lambda: self.gate.factory(),  # type: ignore[union-attr]
                                                    host, port, reuse_address=True)
        except OSError as exc:
            raise LbError(f"admin API cannot listen on {self.addr}: {exc.strerror or exc}") from exc
        bound = self.aserver.sockets[0].getsockname()[1]
        self.gate = Gate(self.limits, Screen(host, bound), self.dispatch)
        self.counters = Metrics(self.server.balancer, admin_refusals=self.gate.refused)
        self.metrics = self.counters.render
        self.history.follow(self.server.balancer.tally)  # its counts, read at each sample
        logging.getLogger("buddylb").addHandler(self._log_handler)
        self._sampler = loop.create_task(self._sample_forever())
        log.info("admin API and dashboard on http://%s/", self.addr)

    async def stop(self) -> None:
        if self.aserver is not None:
            self.aserver.close()
        if self.gate is not None:
            self.gate.close_all()
        if self._sampler is not None:
            self._sampler.cancel()
        logging.getLogger("buddylb").removeHandler(self._log_handler)

    async def _group(self, path: str, head: RequestHead, body: bytes, local: Any) -> Any:
        """The same request to every peer worker, merged with this worker's answer."""
        method = "GET" if head.method == b"HEAD" else head.method.decode("latin-1")
        target = head.target.decode("latin-1")
        answers = await asyncio.gather(*(fanout.ask(p, method, target, body, self.token) for p in self.peers))
        if path == "metrics":
            return Raw(fanout.merge_metrics([local.body, *(payload for _, payload in answers)]), local.ctype)
        return fanout.merge(path, [local, *(fanout.decode(status, payload) for status, payload in answers)])

    async def _sticky_group(self, q: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
        """One page of the sticky database of the whole group: the workers' tables read one
        after the other, so paging walks every entry of every worker once."""
        ctx = {"context": q["context"]} if q.get("context") else {}

        async def page(peer: str, offset: int, limit: int) -> dict[str, Any]:
            target = "/dashboard/sticky?" + urlencode({"offset": offset, "limit": limit, **ctx})
            return fanout.decode(*await fanout.ask(peer, "GET", target, b"", self.token))

        heads = await asyncio.gather(*(page(p, 0, 1) for p in self.peers))
        totals = [local["total"], *(h["total"] for h in heads)]
        rows: list[dict[str, Any]] = []
        for worker, offset, limit in fanout.windows(totals, local["offset"], local["limit"]):
            if worker == 0:
                b = self.server.balancer
                part = dashboard.sticky_page(b.snapshot, b.tables, b.clock(), q.get("context"), offset, limit)
            else:
                part = await page(self.peers[worker - 1], offset, limit)
            rows += [{**r, "worker": worker} for r in part["rows"]]
        return {**local, "total": sum(totals), "rows": rows, "workers": len(totals)}

    def sample(self) -> None:
        """One dashboard sample of the counters (admin.history)."""
        b = self.server.balancer
        snap = b.snapshot
        self.history.sample(b.clock(), time.time(), self.counters.decisions, self.counters.routes,
                            {v.name: v.context for v in snap.vips.values()}, b.probe_targets, snap.generation)

    async def _sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def _static(self, method: bytes, words: list[str]) -> bytes | None:
        """The dashboard's files: open to all, they carry no data (SPEC §4: the data needs the token)."""
        if method not in (b"GET", b"HEAD") or len(words) > 2 or (words and words[0] not in ("static", "index.html")):
            return None
        found = dashboard.static_file(words[-1] if words else "index.html")
        if found is None:
            return None
        return response(200, found[0], found[1].encode())

    def _login(self, body: bytes) -> bytes:
        """`POST /login {"token": ...}`: the token, entered once, becomes an HttpOnly cookie."""
        try:
            presented = parse_body(body).get("token")
        except BadInput as exc:
            return error(400, str(exc))
        if self.token is None:
            return json_response(200, {"ok": True, "data": {"token_required": False}})
        if not isinstance(presented, str) or not token_ok(self.token, presented):
            return error(401, "missing or wrong admin token")
        return response(200, b'{"ok": true, "data": {"token_required": true}}',
                        extra=(b"set-cookie: " + dashboard.set_cookie(self.token).encode(),))

    async def dispatch(self, head: RequestHead, body: bytes) -> bytes:
        """The answer to one request that passed the gate; never raises but Refusal."""
        url = urlsplit(head.target.decode("latin-1"))
        try:
            words = [unquote(w, errors="strict") for w in url.path.strip("/").split("/") if w]
            pairs = parse_qsl(url.query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return error(400, "the path or query string is not valid UTF-8 after percent-decoding")
        page = self._static(head.method, words)
        if page is not None:
            return page
        if head.method == b"POST" and words == ["login"]:
            return self._login(body)
        auth = head.header(b"authorization")
        presented = None
        if auth and auth.lower().startswith(b"bearer "):
            presented = auth[7:].strip().decode("latin-1")
        if not token_ok(self.token, presented) and not dashboard.session_ok(self.token, head.header(b"cookie")):
            return error(401, "missing or wrong admin token")
        n = 2 if words[:1] and words[0] in VERBS else 1
        path, args = "/".join(words[:n]), words[n:]
        method = "GET" if head.method == b"HEAD" else head.method.decode("latin-1")
        endpoint = ROUTES.get((method, path))
        if endpoint is None:
            if path in PATHS:
                return error(405, f"{path} does not accept {method}; mutations need POST")
            return error(404, f"no such command: {path or '/'}")
        try:
            shape = endpoint.shape
            checked_args = shape.check_args(args)
            query = shape.check_query(pairs)
            payload = shape.check_body(parse_body(body))
            result = endpoint.handler(self.server, checked_args, query, payload)
            if isinstance(result, Awaitable):
                result = await result
        except BadInput as exc:
            return error(400, str(exc))
        except CommandError as exc:
            return error(404 if "does not exist" in str(exc) else 400, str(exc))
        key = f"{path}/{checked_args[0]}" if path == "dashboard" else path  # each dashboard view merges its way
        if self.peers and (key in fanout.MERGE or path.startswith("show/") or path == "metrics"
                           or key == "dashboard/sticky"):
            try:
                if key == "dashboard/sticky":
                    result = await self._sticky_group(query, result)
                else:
                    result = await self._group(key, head, body, result)
            except fanout.PeerError as exc:
                return error(502, f"{exc}; the answer would speak for only part of the process group")
        if isinstance(result, Raw):
            return response(200, result.body, result.ctype)
        return json_response(200, {"ok": True, "data": result})
