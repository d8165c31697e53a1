"""Skill figures count items by publication date (issue 16): a 2019 post found today is not a mention of this
quarter, an item published yesterday counts on yesterday, and the periodic refresh rebuilds the days a newly
stored item was published on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from digest.db import transaction
from digest.models import SkillDaily
from digest.runtime import Runtime
from digest.site.figures import daily, read
from tests.figure_data import add_sources, post, skill_ids

OLD = datetime(2019, 5, 1, 8, 0, tzinfo=UTC)


def periodic_refresh(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        daily.refresh_days(session, daily.periodic_days(session, now), now=now)


def python_days(rt: Runtime) -> dict[date, int]:
    python = skill_ids(rt)["Python"]
    with transaction(rt.sessions) as session:
        rows = session.execute(select(SkillDaily.day, SkillDaily.items).where(SkillDaily.skill_id == python))
        return dict(rows.tuples().all())


def test_an_old_post_stored_today_raises_neither_the_90_day_count_nor_the_weekly_chart(
    rt: Runtime, now: datetime
) -> None:
    python = skill_ids(rt)["Python"]
    periodic_refresh(rt, now - timedelta(hours=2))
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        post(session, source, "Python today", now - timedelta(hours=1), [(python, ["Python"], True, 1)])
        for n in range(5):
            tags = [(python, ["Python"], True, 1)]
            post(session, source, f"Python in 2019, {n}", now - timedelta(minutes=n + 1), tags, OLD)

    periodic_refresh(rt, now)

    with transaction(rt.sessions) as session:
        figures = read.skill_figures(session, python, now.date())
    assert figures.total == 1 and figures.change.last == 1
    assert sum(week.items for week in figures.weeks) == 1 and figures.weeks[-1].items == 1
    assert python_days(rt) == {now.date(): 1}


def test_an_item_published_yesterday_and_stored_today_counts_on_yesterday(rt: Runtime, now: datetime) -> None:
    python = skill_ids(rt)["Python"]
    yesterday = now - timedelta(days=1)
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        tags = [(python, ["Python"], True, 1)]
        post(session, source, "Python late", now - timedelta(hours=1), tags, yesterday)

    periodic_refresh(rt, now)

    assert python_days(rt) == {yesterday.date(): 1}


def test_the_periodic_refresh_rebuilds_the_publication_days_of_the_items_stored_since_the_last(
    rt: Runtime, now: datetime
) -> None:
    python = skill_ids(rt)["Python"]
    tags = [(python, ["Python"], True, 1)]
    earlier = now - timedelta(hours=3)
    with transaction(rt.sessions) as session:
        source = add_sources(session, now)["Morning Wire"]
        # Stored before the last refresh and its grace period: its day is not rebuilt again.
        post(session, source, "Python counted", earlier - daily.GRACE * 2, tags, now - timedelta(days=20))
    periodic_refresh(rt, earlier)
    with transaction(rt.sessions) as session:
        post(session, source, "Python backlog", now - timedelta(minutes=5), tags, now - timedelta(days=10))
        post(session, source, "Python too old", now - timedelta(minutes=4), tags, OLD)
        days = daily.periodic_days(session, now)

    periodic_refresh(rt, now)

    ten_days_ago, yesterday = (now - timedelta(days=10)).date(), (now - timedelta(days=1)).date()
    assert days == [ten_days_ago, yesterday, now.date()]
    assert python_days(rt) == {(now - timedelta(days=20)).date(): 1, ten_days_ago: 1}
    with transaction(rt.sessions) as session:
        assert read.skill_figures(session, python, now.date()).total == 2
        assert daily.first_day(session, now.date()) == (now - timedelta(days=20)).date()
