"""Following a link or submitting a form in Chromium and waiting until the next page has loaded.

WebDriver's click returns once the click is dispatched; the navigation it starts may still be in flight, so
a test that reads the page (or the Maildir) straight after may see the page before. ``click_through``
waits until the old document is gone and the new one is complete.
"""

from __future__ import annotations

from tests.support import WAIT


def click_through(browser: object, by: str, value: str) -> None:
    """Click the element found ``by`` ``value`` (a link or a submit button) and wait, up to WAIT seconds, for
    the page it opens."""
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    assert isinstance(browser, WebDriver)
    old = browser.find_element("tag name", "html")
    browser.find_element(by, value).click()
    wait = WebDriverWait(browser, WAIT)
    wait.until(expected_conditions.staleness_of(old))
    wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")
