"""Every email kind in headless Chromium, at a desktop width and a phone's, in light and dark mode.

Chromium stands in for the WebKit and Blink based clients (Apple Mail, Gmail's apps); what it proves is
that the layout fits a 375px screen even with feed text that is one long word, and that the dark-mode
query survives inlining and applies. Screenshots are saved in the test's temporary folder for a person to
look at; the path is printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.deliver.compose import EMAIL_KINDS, Composer
from tests.browser.conftest import chromium
from tests.deliver.test_email_templates import SAMPLES

pytestmark = pytest.mark.slow
WIDTHS = {"desktop": 1000, "mobile": 375}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    # Scroll bars would take width from the page and hide overflow behind themselves.
    with chromium(tmp_path / "profile", extra=("--hide-scrollbars",)) as driver:
        yield driver


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_an_email_fits_a_phone_and_a_desktop_in_light_and_dark_mode(
    browser: object, kind: str, tmp_path: Path
) -> None:
    from selenium.webdriver.chrome.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = tmp_path / f"{kind}.html"
    page.write_text(SAMPLES[kind](Composer()).email.html, encoding="utf-8")
    print(f"screenshots of the {kind} email: {shots}")

    widths: dict[tuple[str, str], list[int]] = {}
    backgrounds: dict[str, str] = {}
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        for name, width in WIDTHS.items():
            browser.set_window_size(width, 1200)
            browser.get(page.as_uri())
            widths[scheme, name] = browser.execute_script(
                "return [document.scrollingElement.scrollWidth, window.innerWidth]"
            )
            backgrounds[scheme] = browser.execute_script(
                "return getComputedStyle(document.querySelector('table.card')).backgroundColor"
            )
            browser.save_screenshot(str(shots / f"{kind}-{name}-{scheme}.png"))

    for scheme in ("light", "dark"):
        scroll, inner = widths[scheme, "mobile"]
        assert inner == WIDTHS["mobile"]
        assert scroll <= inner + 1, f"{kind} is {scroll}px wide on a {inner}px phone ({scheme})"
        scroll, inner = widths[scheme, "desktop"]
        assert scroll <= inner + 1
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(22, 27, 34)"}
    assert len(list(shots.glob("*.png"))) == 4
