"""A person in headless Chromium: a skill's subscribe link, the confirmation, the manage page.

Chromium and its driver come from Debian's packages (`chromium`, `chromium-driver`); nothing is downloaded.
Screenshots of each page are saved in the test's temporary folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import Settings
from digest.web import create_app
from tests.browser.pages import click_through
from tests.support import WAIT
from tests.web_support import link, outbox, serve

pytestmark = pytest.mark.slow


def test_a_visitor_subscribes_from_a_skill_link_confirms_and_manages(
    browser: object, settings: Settings, rt: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    app = create_app(settings, clock=lambda: datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
    with serve(app) as http:
        base = str(http.base_url).rstrip("/")

        browser.get(f"{base}/subscribe?skill=k8s&cadence=daily")
        browser.save_screenshot(str(shots / "1-subscribe.png"))
        assert "Kubernetes" in browser.page_source
        browser.find_element(By.ID, "email").send_keys("reader@example.com")
        click_through(browser, By.CSS_SELECTOR, "form[action='/subscribe'] button[type=submit]")
        browser.save_screenshot(str(shots / "2-check-your-email.png"))
        assert "email" in browser.find_element(By.TAG_NAME, "main").text.lower()

        [confirmation] = outbox(settings)
        browser.get(base + link(confirmation, "confirm"))
        browser.save_screenshot(str(shots / "3-confirm.png"))
        click_through(browser, By.CSS_SELECTOR, "form button[type=submit]")
        browser.save_screenshot(str(shots / "4-confirmed.png"))
        assert "Manage your digests" in browser.page_source

        click_through(browser, By.LINK_TEXT, "Manage your digests")
        browser.save_screenshot(str(shots / "5-manage.png"))
        page = browser.find_element(By.TAG_NAME, "main").text

    assert "Kubernetes" in page and "daily" in page.lower()
    assert sorted(path.name for path in shots.iterdir()) == [
        "1-subscribe.png",
        "2-check-your-email.png",
        "3-confirm.png",
        "4-confirmed.png",
        "5-manage.png",
    ]


def test_the_skill_field_suggests_names_from_the_taxonomy_as_one_types(
    browser: object, settings: Settings, rt: object
) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait

    assert isinstance(browser, WebDriver)
    with serve(create_app(settings)) as http:
        browser.get(f"{str(http.base_url).rstrip('/')}/subscribe")
        offered = browser.execute_script(
            "return Array.from(document.getElementById('skill-names').options, o => o.value)"
        )
        browser.find_element("id", "more").send_keys("Rust, kubern")
        # forms.js asks /skills/suggest for the name after the last comma and keeps what came before.
        WebDriverWait(browser, WAIT).until(
            lambda driver: (
                "Rust, Kubernetes"
                in driver.execute_script(
                    "return Array.from(document.getElementById('skill-names').options, o => o.value)"
                )
            )
        )

    assert "Python" in offered and "Rust, Kubernetes" not in offered
