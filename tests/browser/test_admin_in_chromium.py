"""An admin in headless Chromium: logs into /admin, opens a delivery, sends a copy of it to an address.

Chromium and its driver come from Debian's packages (`chromium`, `chromium-driver`); nothing is downloaded.
Screenshots of each page are saved in the test's temporary folder, whose path the test prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import Settings
from digest.runtime import Runtime
from digest.web import create_app
from tests.browser.conftest import chromium
from tests.browser.pages import click_through
from tests.support import FeedServer, feed_server
from tests.web.conftest import CLOCK, TOKEN
from tests.web.test_admin import SENT_AT, at, follow, ingest, send_all
from tests.web_support import outbox, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile", window="1280,1400") as driver:
        yield driver


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def test_an_admin_logs_in_opens_a_delivery_and_sends_a_copy(
    browser: object, settings: Settings, rt: Runtime, server: FeedServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    follow(rt, "reader@example.com", at("2026-11-15T10:00"), "Python")
    ingest(rt, server, at("2026-11-15T12:00"), ("Python 3.13 is out", "Faster startup."))
    delivery_id = send_all(rt, SENT_AT)["sent"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots in {shots}")
    admin_settings = settings.model_copy(update={"admin_token": TOKEN})
    with serve(create_app(admin_settings, clock=lambda: CLOCK)) as http:
        base = str(http.base_url).rstrip("/")

        browser.get(f"{base}/admin/deliveries")
        browser.save_screenshot(str(shots / "1-login.png"))
        assert browser.current_url.startswith(f"{base}/admin/login")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        click_through(browser, By.CSS_SELECTOR, "form[action='/admin/login'] button[type=submit]")
        browser.save_screenshot(str(shots / "2-deliveries.png"))
        assert browser.current_url == f"{base}/admin/deliveries"

        click_through(browser, By.LINK_TEXT, str(delivery_id))
        browser.save_screenshot(str(shots / "3-delivery.png"))
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "reader@example.com" in main and "Identical to what was sent" in main
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe.digest"))
        assert "Python 3.13 is out" in browser.find_element(By.TAG_NAME, "body").text
        browser.switch_to.default_content()

        browser.find_element(By.ID, "address").send_keys("boss@example.com")
        click_through(browser, By.CSS_SELECTOR, "form[action$='/copy'] button[type=submit]")
        browser.save_screenshot(str(shots / "4-copied.png"))
        note = browser.find_element(By.CSS_SELECTOR, "p.note").text

    assert "Copy to boss@example.com: sent" in note
    assert [message["To"] for message in outbox(settings)] == ["reader@example.com", "boss@example.com"]
    assert sorted(path.name for path in shots.iterdir()) == [
        "1-login.png",
        "2-deliveries.png",
        "3-delivery.png",
        "4-copied.png",
    ]
