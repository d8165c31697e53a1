"""The home page ``/`` (issue 13): the skills of the last 90 days, read from the daily tables like
``/skills``, never from the tag table, with the numbers the per-request ``GROUP BY`` over tags used to give.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from digest.db import transaction
from digest.models import Skill, Tag
from digest.runtime import Runtime
from digest.site.figures import daily
from digest.web import create_app
from tests.figure_data import add_sources, corpus, post, skill_ids
from tests.web_support import serve


@pytest.fixture
def client(rt: Runtime, now: datetime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: now)) as http:
        yield http


def home_rows(page: str) -> list[tuple[str, int]]:
    return [
        (name, int(count))
        for name, count in re.findall(
            r'<tr><td><a href="/skills/[^"]+">([^<]+)</a></td><td>(\d+)</td></tr>', page
        )
    ]


def counted_from_tags(rt: Runtime, now: datetime) -> list[tuple[str, int]]:
    """The query the home page ran on every request before issue 13."""
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(Skill.name, func.count(Tag.item_id))
            .join(Tag, Tag.skill_id == Skill.id)
            .where(Tag.ingested_at >= now - timedelta(days=90))
            .group_by(Skill.id, Skill.name)
            .order_by(func.count(Tag.item_id).desc(), Skill.name)
            .limit(40)
        ).tuples()
        return [(name, int(count)) for name, count in rows]


def refresh(rt: Runtime, now: datetime, days: int) -> None:
    with transaction(rt.sessions) as session:
        daily.refresh(session, (now - timedelta(days=days)).date(), now.date(), now=now)


def test_the_home_page_shows_the_counts_of_the_tags_without_reading_them(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    # Items of the last 60 days: inside the old rolling 90 days and the 90 UTC days of the daily tables.
    corpus(rt, now, count=150, days=60)
    refresh(rt, now, 60)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        page = client.get("/")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)

    assert page.status_code == 200
    shown = home_rows(page.text)
    assert len(shown) == 5 and shown == counted_from_tags(rt, now)
    assert any("skill_daily" in statement for statement in statements)
    assert not [statement for statement in statements if "item_skills" in statement]


def test_the_home_page_counts_new_items_after_the_next_refresh(
    client: httpx.Client, rt: Runtime, now: datetime
) -> None:
    rust = skill_ids(rt)["Rust"]
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Preprints"]
        post(session, source, "Rust lessons", now - timedelta(hours=1), [(rust, ["Rust"], True, 1)])
    before = client.get("/").text
    refresh(rt, now, 1)

    after = client.get("/").text

    assert home_rows(before) == [] and "Nothing indexed yet" in before
    assert home_rows(after) == [("Rust", 1)]
