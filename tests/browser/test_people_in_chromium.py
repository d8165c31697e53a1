"""Issue 17, as a person sees it in headless Chromium: the signup, manage and unsubscribe journeys at a
phone's width (375 px) and a desktop's (1280 px), in light and dark mode.

Each page is checked for horizontal overflow at 375 px, the signup's email error is checked to show once,
beside its field, and the fields a cadence does not use are checked to hide and come back as the cadence
changes (forms.js). Screenshots are saved in the test's temporary folder; the path is printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.records import SubscriptionInfo
from digest.runtime import Runtime
from digest.tokens import MANAGE, UNSUBSCRIBE, make_token
from digest.web import create_app
from tests.browser.conftest import chromium
from tests.browser.pages import click_through
from tests.web_support import serve

pytestmark = pytest.mark.slow
WIDTHS = {"phone": 375, "desktop": 1280}
SCHEMES = ("light", "dark")
CLOCK = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    # Scroll bars would take width from the page and hide overflow behind themselves.
    with chromium(tmp_path / "profile", extra=("--hide-scrollbars",)) as driver:
        yield driver


@pytest.fixture
def reader(rt: Runtime) -> SubscriptionInfo:
    with transaction(rt.sessions) as session:
        return subscribe(
            session,
            "reader@example.com",
            ["Python"],
            Schedule("daily", 8, 0, "Europe/Berlin"),
            CLOCK,
            confirmed=True,
        )


class Journey:
    """One browser at one width and colour scheme, saving numbered screenshots and checking each page."""

    def __init__(self, browser: object, base: str, shots: Path, width: str, scheme: str) -> None:
        from selenium.webdriver.chrome.webdriver import WebDriver

        assert isinstance(browser, WebDriver)
        self.driver, self.base, self.shots = browser, base, shots
        self.width, self.scheme, self.count = width, scheme, 0
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        browser.set_window_size(WIDTHS[width], 1000)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def snap(self, name: str) -> None:
        """Save a screenshot and check that the page fits its width and follows the colour scheme."""
        self.count += 1
        self.driver.save_screenshot(str(self.shots / f"{self.width}-{self.scheme}-{self.count}-{name}.png"))
        scroll, inner = self.driver.execute_script(
            "return [document.scrollingElement.scrollWidth, window.innerWidth]"
        )
        assert inner == WIDTHS[self.width]
        assert scroll <= inner + 1, f"{name} is {scroll}px wide at {inner}px ({self.scheme})"
        background = self.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(13, 17, 23)") == (self.scheme == "dark"), f"{name}: {background}"

    def shown(self, css: str) -> bool:
        return bool(self.driver.find_element("css selector", css).is_displayed())

    def click(self, css: str) -> None:
        self.driver.find_element("css selector", css).click()

    def submit(self, css: str) -> None:
        click_through(self.driver, "css selector", css)


def signup(page: Journey) -> None:
    page.open("/subscribe?skill=python&cadence=daily")
    # Daily: the hour, not the day; weekly: both; hourly: neither (forms.js).
    assert page.shown("#hour") and not page.shown("#weekday")
    page.snap("signup")
    page.click("input[name=cadence][value=weekly]")
    assert page.shown("#hour") and page.shown("#weekday")
    page.click("input[name=cadence][value=hourly]")
    assert not page.shown("#hour") and not page.shown("#weekday")
    page.click("input[name=cadence][value=daily]")

    # Chromium's own check lets "reader@example" through; the server refuses it, beside the field.
    page.driver.find_element("id", "email").send_keys("reader@example")
    page.submit("form[action='/subscribe'] button[type=submit]")
    error = page.driver.find_element("id", "email-error")
    field = page.driver.find_element("id", "email")
    assert error.is_displayed() and error.text.startswith("That does not look like an email address")
    assert page.driver.find_element("tag name", "main").text.count(error.text) == 1
    assert 0 <= field.rect["y"] - (error.rect["y"] + error.rect["height"]) <= 16
    assert field.get_attribute("value") == "reader@example"
    assert page.shown("#hour") and not page.shown("#weekday")
    page.snap("signup-error")


def manage(page: Journey, token: str, subscription_id: int) -> None:
    page.open(f"/manage/{token}")
    hour, day = f"#hour-{subscription_id}", f"#weekday-{subscription_id}"
    assert page.shown(hour) and not page.shown(day)
    page.snap("manage")
    from selenium.webdriver.support.select import Select

    cadence = Select(page.driver.find_element("id", f"cadence-{subscription_id}"))
    cadence.select_by_value("weekly")
    assert page.shown(hour) and page.shown(day)
    cadence.select_by_value("hourly")
    assert not page.shown(hour) and not page.shown(day)

    page.driver.find_element("id", "alert-skill").send_keys("pythn")
    page.submit("#alert-form button[type=submit]")
    error = page.driver.find_element("id", "alert-skill-error")
    assert error.is_displayed() and "We do not know the skill" in error.text
    page.driver.execute_script("arguments[0].scrollIntoView()", error)
    page.snap("manage-alert-error")


def unsubscribe(page: Journey, token: str) -> None:
    page.open(f"/u/{token}")
    assert page.shown("#weekly")
    page.snap("unsubscribe")
    page.submit("#unsubscribe")
    assert page.shown("#undo")
    page.snap("unsubscribed")
    page.submit("#undo")
    assert "You are subscribed again" in page.driver.find_element("tag name", "main").text
    page.snap("undone")


def test_signup_manage_and_unsubscribe_fit_a_phone_and_a_desktop_in_light_and_dark(
    browser: object, rt: Runtime, reader: SubscriptionInfo, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots in {shots}")
    secret = rt.settings.secret_key
    manage_token = make_token(secret, MANAGE, {"u": reader.subscriber_id})
    unsubscribe_token = make_token(secret, UNSUBSCRIBE, {"s": reader.id})
    with serve(create_app(rt.settings, clock=lambda: CLOCK)) as http:
        base = str(http.base_url).rstrip("/")
        for scheme in SCHEMES:
            for width in WIDTHS:
                page = Journey(browser, base, shots, width, scheme)
                signup(page)
                manage(page, manage_token, reader.id)
                unsubscribe(page, unsubscribe_token)

    assert len(list(shots.glob("*.png"))) == len(SCHEMES) * len(WIDTHS) * 7


def test_without_javascript_every_field_shows_and_the_form_still_works(rt: Runtime, tmp_path: Path) -> None:
    from selenium.webdriver.chrome.webdriver import WebDriver

    with chromium(tmp_path / "profile", extra=("--blink-settings=scriptEnabled=false",)) as driver:
        assert isinstance(driver, WebDriver)
        with serve(create_app(rt.settings, clock=lambda: CLOCK)) as http:
            driver.get(f"{str(http.base_url).rstrip('/')}/subscribe?skill=python&cadence=hourly")
            shown = [
                driver.find_element("id", name).is_displayed() for name in ("hour", "weekday", "timezone")
            ]
            driver.find_element("id", "email").send_keys("reader@example.com")
            click_through(driver, "css selector", "form[action='/subscribe'] button[type=submit]")
            answer = driver.find_element("tag name", "main").text

    assert shown == [True, True, True]
    assert "reader@example.com" in answer
