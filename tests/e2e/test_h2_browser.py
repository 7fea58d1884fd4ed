"""A real browser over HTTP/2 through a TLS VIP (issue 16, done-when): Debian's chromium
loads a page and its parallel fetches over one h2 connection; every stream is stuck to
the page's server, which is the buddy of the same client's HTTP/1.1 requests.

Skipped (with the reason) only where chromium is not installed; under CI a missing
browser is a failure, since .ci/run installs it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.configs import shopping_cart
from tests.e2e.conftest import VIP
from tests.support.browser import chromium
from tests.support.net import http_get

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser(tmp_path: Path) -> Iterator:
    # the test's self-signed certificate
    with chromium(tmp_path / "profile", ("--ignore-certificate-errors",), timeout_s=15, script_timeout_s=15) as driver:
        yield driver


def test_browser_streams_over_h2_stuck_and_buddied(ports, backends, balancer, browser):
    for n, h in (("lnx1", "127.0.1.11"), ("lnx2", "127.0.1.12")):
        backends.http(n, h, ports[f"{n}_http"])
        backends.http(n, h, ports[f"{n}_dec"])
    balancer(shopping_cart(ports), "--access-log-format", "json", certs=True)
    base = f"https://{VIP}:{ports['vip_https']}"
    browser.get(base + "/page")
    page = browser.find_element("tag name", "body").text.strip()
    assert page in ("lnx1", "lnx2")
    got = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([...Array(12).keys()].map(i => fetch('/asset' + i).then(r => r.text())))
          .then(bodies => done({bodies: bodies,
                                protocols: performance.getEntries().filter(e => 'nextHopProtocol' in e)
                                                      .map(e => e.nextHopProtocol)}))
          .catch(e => done({error: String(e)}));
    """)
    assert "error" not in got, got
    assert set(got["bodies"]) == {page}  # every stream of the browser: the page's server
    assert len(got["protocols"]) >= 13 and set(got["protocols"]) == {"h2"}, got  # page, fetches (a favicon): HTTP/2
    # the browser's address is 127.0.0.1: its HTTP/1.1 requests on the buddied HTTP VIP follow
    assert http_get("127.0.0.1", VIP, ports["vip_http"])[2].decode() == page
