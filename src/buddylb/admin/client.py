"""The admin API client behind `buddylb show / clear / set / reload` (SPEC §4).

One request per call over stdlib `http.client`; the reply `{"ok": true, "data": ...}`
yields `data`, anything else becomes a CommandError whose exit code says what went
wrong.  It never prints: messages are the caller's (the CLI boundary in `cli.py`).

Exit codes: 1 the instance refused the command (unknown name, bad request, reload
refused), 3 no buddylb answers at the admin address, 4 the admin token was rejected.
"""
from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from buddylb.admin.security import read_token, split_addr
from buddylb.errors import CommandError

EXIT_REFUSED = 1
EXIT_NOT_RUNNING = 3
EXIT_AUTH = 4
TOKEN_ENV = "BUDDYLB_ADMIN_TOKEN"


def token_from(token_file: Path | None) -> str | None:
    """`--token-file` wins over the `BUDDYLB_ADMIN_TOKEN` environment variable."""
    if token_file is not None:
        return read_token(token_file)
    return os.environ.get(TOKEN_ENV) or None


class AdminClient:
    def __init__(self, addr: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.addr = addr
        self.host, self.port = split_addr(addr)
        self.token = token
        self.timeout = timeout

    def call(self, method: str, words: list[str], query: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        """`GET /show/rserver/lnx1?context=Admin` and friends; returns the reply's `data`."""
        path = "/" + "/".join(quote(w, safe="") for w in words)
        q = {k: v for k, v in (query or {}).items() if v is not None}
        if q:
            path += "?" + urlencode(q)
        status, reply = self._request(method, path, body)
        if status == 401:
            hint = ("none was given; pass --token-file PATH or set " + TOKEN_ENV if self.token is None
                    else "check --token-file / " + TOKEN_ENV)
            raise CommandError(f"admin token rejected by {self.addr}: {hint}", EXIT_AUTH)
        if status != 200 or not isinstance(reply, dict) or not reply.get("ok"):
            message = reply.get("error") if isinstance(reply, dict) else None
            raise CommandError(message or f"{self.addr} answered {status} without a message", EXIT_REFUSED)
        return reply.get("data")

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Connection": "close"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (ConnectionRefusedError, ConnectionResetError) as exc:
            raise CommandError(f"no buddylb answers on {self.addr}: is it running? "
                               "start it with buddylb run CONFIG or pass --admin", EXIT_NOT_RUNNING) from exc
        except TimeoutError as exc:
            raise CommandError(f"buddylb on {self.addr} did not answer within {self.timeout:g} s",
                               EXIT_NOT_RUNNING) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CommandError(f"no buddylb answers on {self.addr} ({exc}): is it running? "
                               "start it with buddylb run CONFIG or pass --admin", EXIT_NOT_RUNNING) from exc
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError as exc:
            raise CommandError(f"{self.addr} answered, but not as a buddylb admin API (status {resp.status})",
                               EXIT_NOT_RUNNING) from exc
