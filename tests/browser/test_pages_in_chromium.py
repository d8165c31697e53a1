"""The public pages in headless Chromium at 375 and 1280 px, light and dark (issue 17): a skill's page, one
without items, the home page, the search results and the 404. Each is saved as a screenshot in the test's
temporary folder (``screenshots/<width>-<scheme>-<page>.png``) and checked: nothing wider than the screen,
the header on one line, the chart's labels at least 12 px and none overlapping another, a dark background in
dark mode, no Content-Security-Policy refusal; then the header's search and a 404's suggestion are followed
by clicks."""

from __future__ import annotations

from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from digest.db import transaction
from digest.runtime import Runtime
from digest.site.figures import daily
from digest.web import create_app
from tests.browser.conftest import chromium
from tests.browser.pages import click_through
from tests.figure_data import corpus
from tests.web_support import serve

pytestmark = pytest.mark.slow

PAGES = {
    "skill": "/skills/python",
    "empty-skill": "/skills/go",
    "home": "/",
    "search": "/search?q=learn",
    "404": "/skills/large-language-model",
}
# Every visible label of the chart: its box in CSS pixels and its computed font size.
CHART_LABELS = """
return [...document.querySelectorAll('svg.weeks text')]
  .filter(t => getComputedStyle(t).display !== 'none')
  .map(t => { const r = t.getBoundingClientRect(), size = parseFloat(getComputedStyle(t).fontSize);
              return [r.left, r.top, r.right, r.bottom, size, t.textContent]; });
"""
# The page's layout facts a reader notices: horizontal scrolling, the header's rows, the background.
LAYOUT = """
const box = s => document.querySelector(s).getBoundingClientRect();
return {
  scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  title: [box('header h1').top, box('header h1').bottom],
  search: [box('header form.search').top, box('header form.search').bottom],
  background: getComputedStyle(document.body).backgroundColor,
  color: getComputedStyle(document.body).color,
};
"""


def luminance(css: str) -> float:
    """Relative luminance (WCAG 2) of ``rgb(...)``/``rgba(...)``; transparent is the canvas, white."""
    parts = [float(p) for p in css[css.index("(") + 1 : -1].split(",")]
    if len(parts) == 4 and parts[3] == 0:
        return 1.0

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in parts[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def overlapping(boxes: list[list[Any]]) -> list[tuple[str, str]]:
    return [
        (a[5], b[5])
        for a, b in combinations(boxes, 2)
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]


@pytest.fixture
def refreshed(rt: Runtime, now: datetime) -> Runtime:
    items = corpus(rt, now, count=400)
    with transaction(rt.sessions) as session:
        daily.refresh(session, min(p.at for p in items).date(), now.date(), now=now)
    return rt


@pytest.mark.parametrize("width", [375, 1280])
def test_the_public_pages_read_well_on_a_phone_and_a_desktop_light_and_dark(
    refreshed: Runtime, now: datetime, tmp_path: Path, width: int
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    shots = tmp_path / "screenshots"
    shots.mkdir()
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    labels: dict[str, list[list[Any]]] = {}
    with (
        serve(create_app(refreshed.settings, clock=lambda: now)) as http,
        chromium(tmp_path / "profile", window=f"{width},900") as browser,
    ):
        assert isinstance(browser, WebDriver)
        # Headless Chromium keeps windows at least 500 px wide: the phone's width is emulated, as DevTools'
        # device mode does (a touch screen, the viewport meta tag honoured).
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        base = str(http.base_url).rstrip("/")
        for scheme in ("light", "dark"):
            dark_or_light = {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
            browser.execute_cdp_cmd("Emulation.setEmulatedMedia", dark_or_light)
            for name, path in PAGES.items():
                browser.get(base + path)
                browser.save_screenshot(str(shots / f"{width}-{scheme}-{name}.png"))
                main = browser.find_element(By.TAG_NAME, "main").text
                seen[scheme, name] = browser.execute_script(LAYOUT) | {"main": main}
                if name == "skill":
                    labels[scheme] = browser.execute_script(CHART_LABELS)
        logs = browser.get_log("browser")
        refused = [entry["message"] for entry in logs if "Content Security Policy" in entry["message"]]

        # The header's search finds a skill by its alias, and a 404's suggestion opens the skill.
        browser.get(base + "/")
        browser.find_element(By.ID, "site-q").send_keys("k8s")
        click_through(browser, By.CSS_SELECTOR, "header form.search button")
        searched = browser.current_url
        browser.get(base + PAGES["404"])
        click_through(browser, By.LINK_TEXT, "Large language model")
        suggested = browser.current_url

    assert sorted(path.name for path in shots.iterdir()) == sorted(
        f"{width}-{scheme}-{name}.png" for scheme in ("light", "dark") for name in PAGES
    )
    for (scheme, name), page in seen.items():
        where = f"{name} in {scheme} at {width} px"
        assert page["inner"] == width, where
        assert page["scroll"] <= page["inner"], f"{where} scrolls sideways"
        # One header line: the search sits beside the name, not under it.
        assert page["search"][0] < page["title"][1] and page["title"][0] < page["search"][1], where
        if scheme == "dark":
            assert luminance(page["background"]) < 0.05 and luminance(page["color"]) > 0.5, where
        else:
            assert luminance(page["background"]) > 0.9 and luminance(page["color"]) < 0.05, where
    for scheme, boxes in labels.items():
        dates = [box for box in boxes if " " in box[5]]
        # All 13 weeks' dates on a desktop; every other one, the newest kept, on a phone.
        assert len(dates) == (13 if width == 1280 else 7), scheme
        assert min(box[4] for box in boxes) >= 12 and min(box[3] - box[1] for box in boxes) >= 12
        assert overlapping(boxes) == [], scheme
    assert "items mentioned Python" in seen["light", "skill"]["main"]
    assert "No items mentioned Go in the last 90 days." in seen["light", "empty-skill"]["main"]
    assert "Rising this week" in seen["light", "home"]["main"]
    assert "No skill is called “learn”. The closest:" in seen["light", "search"]["main"]
    assert "Did you mean:" in seen["light", "404"]["main"]
    assert searched == f"{base}/skills/kubernetes" and suggested == f"{base}/skills/llm"
    assert refused == []
