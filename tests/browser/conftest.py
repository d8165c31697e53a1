"""Headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver`, nothing downloaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import need

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextmanager
def chromium(profile: Path, window: str = "1000,1200", extra: tuple[str, ...] = ()) -> Iterator[object]:
    """A headless Chromium driven by Selenium, skipped (or failed, with DIGEST_REQUIRE_SERVICES=1) where it
    is not installed. Typed ``object`` so that test modules import Selenium only when it runs."""
    if not (Path(CHROMIUM).exists() and shutil.which(DRIVER)):
        need("Chromium", "install Debian's chromium and chromium-driver packages")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
        *extra,
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Chromium at 1000 x 1200."""
    with chromium(tmp_path / "profile") as driver:
        yield driver
