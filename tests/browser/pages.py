"""Following a link or submitting a form in Chromium and waiting until the next page has loaded.

WebDriver's click returns once the click is dispatched; the navigation it starts may still be in flight, so
a test that reads the page (or the Maildir) straight after may see the page before. ``click_through``
waits until the old document is gone and the new one is complete.
"""

from __future__ import annotations

from tests.support import WAIT


def click_through(browser: object, by: str, value: str) -> None:
    """Click the element found ``by`` ``value`` (a link or a submit button) and wait, up to WAIT seconds, for
    the page it opens.

    The old document is marked first: the new one is there when the mark is gone and it has loaded. (Asking
    whether the old element went stale fails instead while Chromium swaps documents: "unhandled inspector
    error", seen in CI; so do other calls in that moment, hence the ignored exceptions.)"""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait

    assert isinstance(browser, WebDriver)
    browser.execute_script("document.documentElement.dataset.leaving = 'yes'")
    browser.find_element(by, value).click()
    WebDriverWait(browser, WAIT, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return document.readyState === 'complete' && !document.documentElement.dataset.leaving"
        )
    )
