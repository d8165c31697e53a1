"""Fresh means fresh (issue 16): a digest carries what arrived in its window and was published lately."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from digest.config import load_settings
from digest.db import transaction
from digest.deliver import digests
from digest.deliver.cadence import Schedule
from digest.errors import ConfigError
from digest.ingest import crawl
from digest.models import DeliveryItem, Item, Source
from digest.runtime import Runtime
from tests.deliver.test_digests import at, follow, send_all
from tests.support import FeedServer, Route, feed_server

WEEKLY = Schedule("weekly", 8, 0, "UTC")
DAILY = Schedule("daily", 8, 0, "Europe/Berlin")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def dated_rss(items: list[tuple[str, str, datetime]]) -> bytes:
    """RSS 2.0 of (guid, title, publication date) items, written for these tests."""
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://blog.example.com/{guid}</link>"
        f"<description>Notes on Python.</description><pubDate>{format_datetime(published)}</pubDate></item>"
        for guid, title, published in items
    )
    channel = f"<channel><title>Log</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def crawl_feed(
    rt: Runtime, server: FeedServer, items: list[tuple[str, str, datetime]], when: datetime
) -> None:
    server.routes["/log"] = Route(dated_rss(items))
    with transaction(rt.sessions) as session:
        source = session.scalars(select(Source).where(Source.url == server.url("/log"))).first()
        if source is None:
            source = Source(
                url=server.url("/log"), name="Log", kind="blog", next_fetch_at=when, created_at=when
            )
            session.add(source)
            session.flush()
        source_id = source.id
    outcome = crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, when, random.Random(1))
    assert outcome.status == "ok", outcome.error


def carried_titles(rt: Runtime, delivery_id: int) -> list[str]:
    with transaction(rt.sessions) as session:
        return list(
            session.scalars(
                select(Item.title)
                .join(DeliveryItem, DeliveryItem.item_id == Item.id)
                .where(DeliveryItem.delivery_id == delivery_id)
                .order_by(Item.title)
            )
        )


def test_a_five_year_backlog_is_stored_but_only_the_three_new_posts_are_mailed(
    rt: Runtime, server: FeedServer
) -> None:
    follow(rt, "reader@example.com", DAILY, at("2026-11-15T10:00"))
    first_post = at("2021-11-16T09:00")
    backlog = [(f"old-{n}", f"Python post {n}", first_post + timedelta(weeks=n)) for n in range(260)]
    assert backlog[-1][2] < at("2026-11-08T07:00")
    crawl_feed(rt, server, backlog, at("2026-11-15T12:00"))
    first = send_all(rt, at("2026-11-16T07:00:30"))

    new = [(f"new-{n}", f"Python news {n}", at(f"2026-11-16T1{n}:00")) for n in range(3)]
    crawl_feed(rt, server, [*new, *backlog], at("2026-11-16T14:00"))
    second = send_all(rt, at("2026-11-17T07:00:30"))

    with transaction(rt.sessions) as session:
        stored = len(session.scalars(select(Item.id)).all())
    assert stored == 263
    assert [(o.status, o.items) for o in first] == [("skipped", 0)]
    assert [(o.status, o.items) for o in second] == [("sent", 3)]
    assert carried_titles(rt, second[0].delivery_id) == ["Python news 0", "Python news 1", "Python news 2"]


@pytest.mark.parametrize(("max_age", "expected"), [(timedelta(days=7), True), (timedelta(days=2), False)])
def test_a_weekly_reader_gets_a_ten_day_old_post_only_if_it_arrived_in_the_window_and_is_young_enough(
    rt: Runtime, server: FeedServer, max_age: timedelta, expected: bool
) -> None:
    follow(rt, "reader@example.com", WEEKLY, at("2026-11-09T09:00"))
    before = ("before", "Python post that arrived before the window", at("2026-11-06T08:00"))
    crawl_feed(rt, server, [before], at("2026-11-08T12:00"))
    ten_days = ("ten-days", "Python post of ten days ago", at("2026-11-06T08:00"))
    three_weeks = ("three-weeks", "Python post of three weeks ago", at("2026-10-26T08:00"))
    crawl_feed(rt, server, [before, ten_days, three_weeks], at("2026-11-12T12:00"))
    config = replace(rt.delivery, max_item_age=max_age)

    [delivery_id] = [
        d for batch in digests.dispatch_due(rt.sessions, at("2026-11-16T08:00:30")) for d in batch
    ]
    outcome = digests.send_delivery(
        rt.sessions,
        delivery_id,
        mailer=rt.mailer,
        composer=rt.composer,
        config=config,
        now=at("2026-11-16T08:01"),
    )

    titles = carried_titles(rt, outcome.delivery_id)
    assert titles == (["Python post of ten days ago"] if expected else [])


def test_an_item_without_a_date_or_dated_in_the_future_counts_as_published_when_first_seen(
    rt: Runtime, server: FeedServer
) -> None:
    follow(rt, "reader@example.com", DAILY, at("2026-11-15T10:00"))
    future = ("future", "Python post from the future", at("2027-01-01T00:00"))
    crawl_feed(rt, server, [future], at("2026-11-15T12:00"))

    [outcome] = send_all(rt, at("2026-11-16T07:00:30"))

    with transaction(rt.sessions) as session:
        published = session.scalar(select(Item.published_at))
    assert published == at("2026-11-15T12:00")
    assert (outcome.status, outcome.items) == ("sent", 1)


def test_the_age_limit_reads_durations_and_refuses_nonsense(tmp_path: object) -> None:
    assert load_settings(home=tmp_path, max_item_age="7d").max_item_age == 7 * 86400
    assert load_settings(home=tmp_path, max_item_age="36h").max_item_age == 36 * 3600
    with pytest.raises(ConfigError, match="DIGEST_MAX_ITEM_AGE"):
        load_settings(home=tmp_path, max_item_age="a week")


def test_an_edited_post_never_moves_its_publication_date_past_first_seen(
    rt: Runtime, server: FeedServer
) -> None:
    first_seen = at("2026-11-16T09:00")
    crawl_feed(rt, server, [("post", "Python post", at("2026-11-16T08:00"))], first_seen)
    # The feed re-dates the post three days later (an edit, or a re-publication of the same entry), then
    # corrects an earlier date: forward is ignored, back is kept.
    crawl_feed(rt, server, [("post", "Python post, edited", at("2026-11-19T08:00"))], at("2026-11-19T10:00"))
    with transaction(rt.sessions) as session:
        item = session.scalars(select(Item)).one()
        assert (item.title, item.published_at) == ("Python post, edited", at("2026-11-16T08:00"))
    crawl_feed(rt, server, [("post", "Python post", at("2026-11-15T08:00"))], at("2026-11-20T10:00"))
    with transaction(rt.sessions) as session:
        item = session.scalars(select(Item)).one()
        assert item.published_at == at("2026-11-15T08:00") and item.published_at <= item.ingested_at
