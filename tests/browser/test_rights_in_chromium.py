"""Issue 14, the people's rights, in headless Chromium: a person signs up and confirms, unsubscribes from
everything on the manage page (the address is then suppressed), downloads their data and erases it after
a second confirmation. The Maildir holds the confirmation and nothing else.

Screenshots of each page are saved in the test's temporary folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Settings, settings_env
from digest.web import create_app
from tests.browser.pages import click_through
from tests.support import WAIT
from tests.web_support import link, outbox, serve

pytestmark = pytest.mark.slow
ADDRESS = "reader@example.com"


def suppressed(settings: Settings) -> list[tuple[str | None, str]]:
    done = CliRunner().invoke(app, ["suppression", "list", "--json"], env=settings_env(settings))
    assert done.exit_code == 0, done.output
    return [(row["email"], row["reason"]) for row in json.loads(done.output)]


def downloaded(folder: Path) -> Path:
    """The finished download in ``folder`` (Chromium writes a .crdownload first), polled with a deadline."""
    deadline = time.monotonic() + WAIT
    while True:
        done = list(folder.glob("*.json"))
        if done:
            return done[0]
        assert time.monotonic() < deadline, "the download did not finish"
        time.sleep(0.05)


def test_a_person_unsubscribes_from_everything_downloads_their_data_and_erases_it(
    browser: object, settings: Settings, rt: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    shots, downloads = tmp_path / "screenshots", tmp_path / "downloads"
    shots.mkdir()
    downloads.mkdir()
    browser.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    with serve(create_app(settings)) as http:
        base = str(http.base_url).rstrip("/")
        browser.get(f"{base}/subscribe?skill=k8s&cadence=daily")
        browser.find_element(By.ID, "email").send_keys(ADDRESS)
        click_through(browser, By.CSS_SELECTOR, "form[action='/subscribe'] button[type=submit]")
        [confirmation] = outbox(settings)
        browser.get(base + link(confirmation, "confirm"))
        click_through(browser, By.CSS_SELECTOR, "form button[type=submit]")
        click_through(browser, By.LINK_TEXT, "Manage your digests")
        browser.save_screenshot(str(shots / "1-manage.png"))

        unsubscribe = "form input[value='unsubscribe_all'] ~ button"
        click_through(browser, By.CSS_SELECTOR, unsubscribe)
        browser.save_screenshot(str(shots / "2-unsubscribed.png"))
        assert "Unsubscribed." in browser.find_element(By.TAG_NAME, "main").text
        assert suppressed(settings) == [(ADDRESS, "unsubscribed")]

        browser.find_element(By.ID, "download-data").click()
        data = json.loads(downloaded(downloads).read_text(encoding="utf-8"))
        assert data["email"] == ADDRESS and data["subscriber"]["state"] == "suppressed"
        assert [s["skills"] for s in data["subscriptions"]] == [["Kubernetes"]]
        assert data["suppression"]["reason"] == "unsubscribed"

        click_through(browser, By.ID, "erase-data")
        browser.save_screenshot(str(shots / "3-erase-confirm.png"))
        assert "cannot be undone" in browser.find_element(By.TAG_NAME, "main").text
        assert suppressed(settings) == [(ADDRESS, "unsubscribed")]
        click_through(browser, By.ID, "erase-confirm")
        browser.save_screenshot(str(shots / "4-erased.png"))
        assert "Erased" in browser.find_element(By.TAG_NAME, "h2").text

    assert suppressed(settings) == [(None, "erased")]
    assert [str(message["To"]) for message in outbox(settings)] == [ADDRESS]
    assert sorted(path.name for path in shots.iterdir()) == [
        "1-manage.png",
        "2-unsubscribed.png",
        "3-erase-confirm.png",
        "4-erased.png",
    ]
