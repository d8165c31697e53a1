"""The ingest wing end to end: a real HTTP server on loopback, real parsing, SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from digest.db import transaction
from digest.ingest import crawl
from digest.models import Item, Skill, Source, Tag
from digest.runtime import Runtime
from tests.support import FeedServer, Route, feed_server, rss

FIRST = rss(
    ("a1", "Python 3.13 speeds up Kubernetes operators", "A release note."),
    ("a2", "Quarterly results", "Revenue grew, teams go back to the office."),
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def add_source(rt: Runtime, url: str, now: datetime, kind: str = "news") -> int:
    with transaction(rt.sessions) as session:
        source = Source(url=url, name="test", kind=kind, next_fetch_at=now, created_at=now)
        session.add(source)
        session.flush()
        return source.id


def refresh(rt: Runtime, source_id: int, now: datetime) -> crawl.CrawlOutcome:
    return crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, now, random.Random(1))


def source_row(rt: Runtime, source_id: int) -> Source:
    with transaction(rt.sessions) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source


def test_it_stores_and_tags_new_items(rt: Runtime, server: FeedServer, now: datetime) -> None:
    server.routes["/feed"] = Route(FIRST, headers={"Content-Type": "application/rss+xml"})
    source_id = add_source(rt, server.url("/feed"), now)

    outcome = refresh(rt, source_id, now)

    assert (outcome.status, outcome.http_status, outcome.new, outcome.updated) == ("ok", 200, 2, 0)
    with transaction(rt.sessions) as session:
        titles = {item.title: item for item in session.scalars(select(Item))}
        tagged = session.execute(
            select(Item.title, Skill.name)
            .join(Tag, Tag.item_id == Item.id)
            .join(Skill, Skill.id == Tag.skill_id)
        ).all()
    assert titles["Python 3.13 speeds up Kubernetes operators"].ingested_at == now
    assert set(tagged) == {
        ("Python 3.13 speeds up Kubernetes operators", "Python"),
        ("Python 3.13 speeds up Kubernetes operators", "Kubernetes"),
    }


def test_it_asks_conditionally_and_stores_nothing_twice(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST, etag='"v1"')
    source_id = add_source(rt, server.url("/feed"), now)
    refresh(rt, source_id, now)

    again = refresh(rt, source_id, now + timedelta(hours=1))

    assert server.requests[-1][1].get("if-none-match") == '"v1"'
    assert (again.status, again.http_status, again.new) == ("not-modified", 304, 0)
    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2


def test_it_updates_a_changed_entry_without_changing_when_it_was_ingested(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST)
    source_id = add_source(rt, server.url("/feed"), now)
    refresh(rt, source_id, now)
    server.routes["/feed"] = Route(rss(("a1", "Python 3.13 speeds up Rust and Kubernetes", "Edited.")))

    outcome = refresh(rt, source_id, now + timedelta(hours=1))

    assert (outcome.new, outcome.updated) == (0, 1)
    with transaction(rt.sessions) as session:
        item = session.scalars(select(Item).where(Item.title.like("%Rust%"))).one()
        names = set(
            session.scalars(
                select(Skill.name).join(Tag, Tag.skill_id == Skill.id).where(Tag.item_id == item.id)
            )
        )
    assert item.ingested_at == now
    assert names == {"Python", "Kubernetes", "Rust"}


def test_it_records_a_broken_feed_and_backs_off(rt: Runtime, server: FeedServer, now: datetime) -> None:
    server.routes["/feed"] = Route(b"just some text, not a feed")
    source_id = add_source(rt, server.url("/feed"), now)

    outcome = refresh(rt, source_id, now)

    source = source_row(rt, source_id)
    assert outcome.status == "error"
    assert source.last_status == "error" and source.consecutive_failures == 1
    assert source.last_error and "feed" in source.last_error
    assert source.next_fetch_at >= now + timedelta(minutes=15)
    assert source.state == "active"


def test_it_disables_a_feed_that_is_gone(rt: Runtime, server: FeedServer, now: datetime) -> None:
    server.routes["/feed"] = Route(b"gone", status=410)
    source_id = add_source(rt, server.url("/feed"), now)

    refresh(rt, source_id, now)

    source = source_row(rt, source_id)
    assert source.state == "disabled"
    assert source.disabled_reason and "410" in source.disabled_reason


def test_it_follows_a_permanent_redirect_and_remembers_it(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(FIRST)
    source_id = add_source(rt, server.url("/old"), now)

    outcome = refresh(rt, source_id, now)

    assert outcome.new == 2
    assert source_row(rt, source_id).url == server.url("/new")


def test_it_follows_a_temporary_redirect_without_moving_the_feed(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/old"] = Route(status=302, headers={"Location": "/new"})
    server.routes["/new"] = Route(FIRST)
    source_id = add_source(rt, server.url("/old"), now)

    refresh(rt, source_id, now)

    assert source_row(rt, source_id).url == server.url("/old")


def test_it_keeps_what_it_can_read_of_a_truncated_feed(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST[: FIRST.index(b"<item>", 10) + 120])
    source_id = add_source(rt, server.url("/feed"), now)

    outcome = refresh(rt, source_id, now)

    assert (outcome.status, outcome.new) == ("ok", 1)


def test_a_server_ignoring_conditional_get_costs_no_parse_when_the_body_is_unchanged(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST)
    source_id = add_source(rt, server.url("/feed"), now)
    refresh(rt, source_id, now)
    with transaction(rt.sessions) as session:
        session.execute(update(Item).values(title="edited locally"))

    again = refresh(rt, source_id, now + timedelta(hours=1))

    assert (again.status, again.http_status, again.new, again.updated) == ("not-modified", 200, 0, 0)
    with transaction(rt.sessions) as session:
        assert set(session.scalars(select(Item.title))) == {"edited locally"}


def test_it_waits_as_long_as_the_publisher_asks_within_a_day(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST, headers={"Cache-Control": "max-age=10800"})
    source_id = add_source(rt, server.url("/feed"), now)

    refresh(rt, source_id, now)

    assert timedelta(hours=2.7) <= source_row(rt, source_id).next_fetch_at - now <= timedelta(hours=3.3)


def test_it_honours_retry_after_when_throttled(rt: Runtime, server: FeedServer, now: datetime) -> None:
    server.routes["/feed"] = Route(b"slow down", status=429, headers={"Retry-After": "7200"})
    source_id = add_source(rt, server.url("/feed"), now)

    outcome = refresh(rt, source_id, now)

    source = source_row(rt, source_id)
    assert outcome.status == "error" and outcome.http_status == 429
    assert source.next_fetch_at == now + timedelta(hours=2)
    assert source.state == "active"


def test_it_disables_a_feed_after_ten_failures_in_a_row_and_says_why(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(b"oops", status=500)
    source_id = add_source(rt, server.url("/feed"), now)

    for attempt in range(10):
        assert source_row(rt, source_id).state == "active", attempt
        refresh(rt, source_id, now + timedelta(days=attempt))

    source = source_row(rt, source_id)
    assert source.state == "disabled" and source.consecutive_failures == 10
    assert (
        source.disabled_reason
        and "10 failures in a row" in source.disabled_reason
        and "500" in source.disabled_reason
    )


def test_a_failed_fetch_loses_nothing_already_stored(rt: Runtime, server: FeedServer, now: datetime) -> None:
    server.routes["/feed"] = Route(FIRST)
    source_id = add_source(rt, server.url("/feed"), now)
    refresh(rt, source_id, now)
    server.routes["/feed"] = Route(b"<html><body>maintenance</body></html>")

    refresh(rt, source_id, now + timedelta(hours=1))

    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2
        assert session.scalar(select(func.count()).select_from(Tag)) == 2


def test_it_records_the_warning_of_a_feed_it_could_still_read(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/feed"] = Route(FIRST[: FIRST.index(b"<item>", 10) + 120])
    source_id = add_source(rt, server.url("/feed"), now)

    refresh(rt, source_id, now)

    warning = source_row(rt, source_id).last_warning
    assert warning and "SAXParseException" in warning


def test_it_hands_a_due_source_to_one_claimer_only(rt: Runtime, server: FeedServer, now: datetime) -> None:
    add_source(rt, server.url("/a"), now)
    add_source(rt, server.url("/b"), now + timedelta(hours=1))

    first = crawl.claim_due_sources(rt.sessions, now)
    second = crawl.claim_due_sources(rt.sessions, now)

    assert len(first) == 1
    assert second == []


REAL_FEEDS = sorted(
    path
    for path in (Path(__file__).parent.parent / "data" / "feeds").iterdir()
    if path.suffix in (".xml", ".rss", ".json")
)


def test_real_world_snapshots_are_crawled_or_refused_with_a_reason(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    ids = {}
    for path in REAL_FEEDS:
        server.routes[f"/{path.name}"] = Route(path.read_bytes())
        ids[path.name] = add_source(rt, server.url(f"/{path.name}"), now)

    outcomes = {name: refresh(rt, source_id, now) for name, source_id in ids.items()}

    refused = {name for name, outcome in outcomes.items() if outcome.status == "error"}
    assert refused == {"allthis-partial.json", "ScriptingNews.json", "entity_bomb.xml", "external_entity.xml"}
    assert all(outcomes[name].error for name in refused)
    assert sum(outcome.new for outcome in outcomes.values()) > 150
    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.published_at > now)) == 0


def test_two_crawlers_claiming_at_once_share_the_due_feeds_without_overlap(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    for number in range(40):
        add_source(rt, server.url(f"/{number}"), now)
    barrier = threading.Barrier(2)

    def claim() -> list[int]:
        barrier.wait()
        return crawl.claim_due_sources(rt.sessions, now)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: claim(), range(2))

    assert not set(first) & set(second)
    assert len(first) + len(second) == 40


def test_copies_of_one_paper_in_two_feeds_share_a_story(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>arXiv</title>'
        "<entry><id>http://arxiv.org/abs/2611.01234{version}</id><title>Sparse attention for LLMs</title>"
        '<link href="http://arxiv.org/abs/2611.01234{version}"/><updated>2026-11-10T00:00:00Z</updated>'
        "<summary>We study Python.</summary></entry></feed>"
    )
    server.routes["/a"] = Route(atom.format(version="v1").encode())
    server.routes["/b"] = Route(atom.format(version="v2").encode())
    for path in ("/a", "/b"):
        refresh(rt, add_source(rt, server.url(path), now), now)

    with transaction(rt.sessions) as session:
        stories = session.execute(select(Item.external_id, Item.story_key)).all()
    assert len(stories) == 2
    assert {external_id for external_id, _ in stories} == {"arxiv:2611.01234"}
    assert len({story for _, story in stories}) == 1
