"""The Content-Security-Policy in a real browser (issue 14, finding 8): /docs draws the API from files this
app serves, the signup form's script runs from /static, and Chromium reports no refused resource."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from digest.config import Settings
from digest.web import create_app
from tests.web_support import serve

pytestmark = pytest.mark.slow


def csp_violations(browser: object) -> list[str]:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    logs = browser.get_log("browser")
    return [entry["message"] for entry in logs if "Content Security Policy" in entry["message"]]


def test_docs_and_the_signup_form_work_under_the_policy(
    browser: object, settings: Settings, rt: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    # The server's default differs from the browser's zone, so only the script can make them equal.
    served = settings.model_copy(update={"default_timezone": "Pacific/Chatham"})
    app = create_app(served, clock=lambda: datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
    with serve(app) as http:
        base = str(http.base_url).rstrip("/")

        browser.get(f"{base}/docs")
        deadline = time.monotonic() + 20
        while not browser.find_elements(By.CSS_SELECTOR, ".opblock"):
            assert time.monotonic() < deadline, f"Swagger UI drew no operation: {browser.get_log('browser')}"
            time.sleep(0.1)
        operations = browser.find_element(By.ID, "swagger-ui").text
        docs_refused = csp_violations(browser)

        browser.get(f"{base}/subscribe?skill=python")
        # forms.js picks the browser's timezone when the link named none: it ran, from /static.
        chosen = browser.execute_script("return document.getElementById('timezone').value")
        zone = browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        form_refused = csp_violations(browser)

    assert "/api/subscriptions" in operations
    assert chosen == zone != "Pacific/Chatham"
    assert docs_refused == [] and form_refused == []
