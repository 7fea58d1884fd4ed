"""1000 idle connections to the admin port (issue 13 item 3), scaled to stay quick: buddylb
runs with a soft descriptor limit of 256, so the flood is four times what it may hold.
Before the connection cap the flood took every descriptor and the VIPs with them."""
from __future__ import annotations

import time
from pathlib import Path

from tests.admin.support import running_shop
from tests.support.net import http_get, idle_connections

FLOOD = 1000
NOFILE = 256


def test_idle_admin_flood_leaves_vips_and_admin_serving(tmp_path: Path) -> None:
    with running_shop(tmp_path, nofile=NOFILE) as shop:
        host, port = shop.lb.admin.rsplit(":", 1)
        flood = idle_connections(host, int(port), FLOOD)
        try:
            time.sleep(0.5)  # let buddylb accept the lot
            served = [shop.get(f"127.0.2.{i}", "http") for i in range(1, 21)]
            assert set(served) <= {"lnx1-http", "lnx2-http"} and len(served) == 20
            t0 = time.monotonic()
            assert shop.lb.api("/info")["ok"] is True  # the operator still gets in
            assert time.monotonic() - t0 < 2.0
            status, _, _ = http_get("127.0.2.99", "127.0.0.100", shop.ports["v_solo"])
            assert status == 200
        finally:
            for s in flood:
                s.close()
        assert "Too many open files" not in shop.lb.stderr()
        assert shop.lb.api("/info")["ok"] is True
