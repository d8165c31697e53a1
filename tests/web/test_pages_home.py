"""The home page (issue 17): what the service is, the skills rising most this week against the 4 weeks before,
counted from the daily tables (never a ``GROUP BY`` over tags per request), with links, counts and change.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from digest.db import transaction
from digest.runtime import Runtime
from digest.site.figures import daily
from digest.web import create_app
from tests.figure_data import add_sources, post, skill_ids
from tests.web_support import serve


@pytest.fixture
def site(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


def rising_rows(page: str) -> list[tuple[str, str, int, str, str]]:
    """(link, name, items in 7 days, change, baseline words) per row of the rising table."""
    return [
        (path, html.unescape(name), int(count.replace(",", "")), change, html.unescape(base))
        for path, name, count, change, base in re.findall(
            r'<tr class="rise"><td><a href="([^"]+)">([^<]+)</a></td><td class="number">([\d,]+)</td>'
            r'<td><span class="up">([^<]+)</span> <span class="muted">([^<]+)</span></td></tr>',
            page,
        )
    ]


@pytest.fixture
def source(rt: Runtime, now: datetime) -> int:
    with transaction(rt.sessions) as session:
        return add_sources(session, now)["Morning Wire"]


def publish(rt: Runtime, now: datetime, source: int, plan: dict[str, dict[int, int]]) -> None:
    """For each skill, ``{days before now: items published that day}``, stored and counted."""
    ids = skill_ids(rt) | {"Go": "4cd0e21a9a0795a1"}
    with transaction(rt.sessions) as session:
        for name, days in plan.items():
            for back, count in days.items():
                at = now - timedelta(days=back, hours=1)
                for number in range(count):
                    post(session, source, f"{name} {back} {number}", now, [(ids[name], [name], True, 1)], at)
    with transaction(rt.sessions) as session:
        daily.refresh(session, (now - timedelta(days=60)).date(), now.date(), now=now)


def test_the_skills_rising_most_against_their_4_weeks_lead_the_home_page(
    site: httpx.Client, rt: Runtime, now: datetime, source: int
) -> None:
    publish(
        rt,
        now,
        source,
        {
            # 6 this week (the 7 UTC days to today: 0 to 6 days back) against 8 in the 4 weeks before (2 a
            # week): +200%, (6 - 2) / sqrt(3) = 2.3.
            "Rust": {0: 2, 6: 4, 7: 2, 20: 3, 34: 3, 35: 9},
            # 30 against 100 (25 a week): +20%, a big skill's ordinary week, (30 - 25) / sqrt(26) = 1.0.
            "Python": {1: 30, 10: 50, 30: 50},
            # 3 and nothing before: new, 3 / sqrt(1) = 3.0.
            "Docker": {2: 3, 40: 5},
            # Too few to mean anything, and a skill going down.
            "Kubernetes": {0: 2},
            "PostgreSQL": {3: 4, 12: 40},
            # Only outside the 35 days.
            "Go": {36: 10, 50: 10},
        },
    )
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        page = site.get("/")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)

    assert page.status_code == 200
    assert rising_rows(page.text) == [
        ("/skills/docker", "Docker", 3, "new", "none in the 4 weeks before"),
        ("/skills/rust", "Rust", 6, "+200%", "from 2.0 a week"),
        ("/skills/python", "Python", 30, "+20%", "from 25.0 a week"),
    ]
    assert any("skill_daily" in statement for statement in statements)
    assert not [statement for statement in statements if "item_skills" in statement]


def test_the_rising_list_moves_with_the_clock_and_the_next_refresh(
    rt: Runtime, now: datetime, source: int
) -> None:
    publish(rt, now, source, {"Rust": {0: 4, 3: 1}})
    week_later = now + timedelta(days=7)
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        today = rising_rows(http.get("/").text)
        publish(rt, now, source, {"Docker": {1: 6}})
        refreshed = rising_rows(http.get("/").text)
    with serve(create_app(rt.settings, clock=lambda: week_later)) as http:
        # A week on, Rust's 5 are its baseline (1.25 a week) and nothing is new: it falls off the list.
        later = http.get("/").text

    assert [row[1:4] for row in today] == [("Rust", 5, "new")]
    assert [row[1:4] for row in refreshed] == [("Docker", 6, "new"), ("Rust", 5, "new")]
    assert rising_rows(later) == [] and "No skill is rising this week." in later


def test_the_home_page_says_what_the_service_is_and_leads_to_search_and_subscription(
    site: httpx.Client,
) -> None:
    page = site.get("/").text
    main = page[page.index("<main") : page.index("</main>")]

    assert "News, blog posts and papers about the skills you follow, by email" in main
    assert '<form method="get" action="/search" role="search" class="search">' in main
    assert '<a class="cta" href="/subscribe">Get a digest</a>' in main
    assert "No skill is rising this week: the figures are not computed yet." in main
    meta = dict(re.findall(r'<meta property="(og:[a-z_]+)" content="([^"]*)">', page))
    assert meta["og:url"] == "http://127.0.0.1:8000/" and meta["og:type"] == "website"
