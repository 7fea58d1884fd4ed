"""Debian's headless chromium driven by selenium (chromium-driver), for the tests that look at
buddylb the way a person does: the dashboard, and a page loaded over HTTP/2.  Offline: selenium
must never download a browser or a driver."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
BASE_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage")


@contextmanager
def chromium(profile: Path, extra_args: tuple[str, ...] = (), timeout_s: float = 15.0,
             script_timeout_s: float | None = None) -> Iterator:
    """A driver for one test; skipped where chromium is missing, failed on CI (.ci/run installs it)."""
    if CHROMIUM is None or DRIVER is None:
        if os.environ.get("CI"):
            pytest.fail("chromium / chromedriver missing: .ci/run installs chromium and chromium-driver")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (*BASE_ARGS, *extra_args, f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(timeout_s)
    if script_timeout_s is not None:
        driver.set_script_timeout(script_timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
