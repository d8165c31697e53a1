"""Issue 17, the admin for the person on call at 2am, in headless Chromium: every admin page at a phone's
width (375 px) and a desktop's (1280 px), in light and dark mode, reached through the navigation links.

Each page is checked for horizontal overflow at its width and for the health banner, shown at the top and
within the screen. Screenshots are saved in the test's temporary folder; the path is printed.
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
from tests.browser.test_people_in_chromium import SCHEMES, WIDTHS, Journey
from tests.support import FeedServer, feed_server
from tests.web.conftest import CLOCK, TOKEN
from tests.web.test_admin import SENT_AT, at, follow, ingest, send_all
from tests.web_support import serve

pytestmark = pytest.mark.slow
# The navigation links, in the order the header shows them, each with words its page holds.
PAGES = (
    ("Deliveries", "reader@example.com"),
    ("Feeds", "Loopback news"),
    ("Coverage", "Python"),
    ("Schedules", "crawl"),
    ("Subscribers", "reader@example.com"),
    ("Sending", "Sending"),
    ("Audit", "Audit"),
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    # Scroll bars would take width from the page and hide overflow behind themselves.
    with chromium(tmp_path / "profile", extra=("--hide-scrollbars",)) as driver:
        yield driver


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def banner_shown(page: Journey) -> None:
    banner = page.driver.find_element("css selector", "section.banner[aria-label=Health]")
    main = page.driver.find_element("id", "main")
    assert banner.is_displayed() and "beat:" in banner.text and "workers:" in banner.text
    # Above the page's own content, and within the screen's width.
    assert banner.rect["y"] < main.rect["y"]
    assert banner.rect["x"] >= 0 and banner.rect["x"] + banner.rect["width"] <= WIDTHS[page.width] + 1


def walk(page: Journey, delivery_id: int) -> None:
    page.open("/admin")
    banner_shown(page)
    page.snap("overview")
    for link, words in PAGES:
        click_through(page.driver, "link text", link)
        assert words in page.driver.find_element("id", "main").text, link
        banner_shown(page)
        page.snap(link.lower())
        if link == "Deliveries":
            click_through(page.driver, "link text", str(delivery_id))
            assert "Identical to what was sent" in page.driver.find_element("id", "main").text
            banner_shown(page)
            page.snap("delivery")


def test_every_admin_page_fits_a_phone_and_a_desktop_in_light_and_dark_under_the_health_banner(
    browser: object, settings: Settings, rt: Runtime, server: FeedServer, tmp_path: Path
) -> None:
    from selenium.webdriver.chrome.webdriver import WebDriver

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
        browser.get(f"{base}/admin/login")
        browser.find_element("id", "token").send_keys(TOKEN)
        click_through(browser, "css selector", "form[action='/admin/login'] button[type=submit]")
        for scheme in SCHEMES:
            for width in WIDTHS:
                walk(Journey(browser, base, shots, width, scheme), delivery_id)

    assert len(list(shots.glob("*.png"))) == len(SCHEMES) * len(WIDTHS) * (len(PAGES) + 2)
