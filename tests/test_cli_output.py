"""What the `digest` command prints and how it exits (issue 17): data intact, exit codes, full reports."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from digest.db import transaction
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest import crawl
from digest.models import Skill, Source
from digest.ops import sending
from digest.runtime import Runtime
from tests.support import FeedServer, Route, feed_server, rss, smtp_sink
from tests.support import digest_in as digest

MARKUP = "C++ [abc] [/] [bold] language"
DAILY = Schedule("daily", 8, 0, "UTC")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def add_feed(rt: Runtime, url: str, name: str = "Loopback") -> int:
    now = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        source = Source(url=url, name=name, kind="news", next_fetch_at=now, created_at=now)
        session.add(source)
        session.flush()
        return source.id


def test_data_that_looks_like_rich_markup_prints_intact(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session:
        session.execute(update(Skill).where(Skill.name == "Python").values(name=MARKUP))
        subscribe(session, "reader@example.com", [MARKUP], DAILY, now, confirmed=True)
    add_feed(rt, "http://127.0.0.1:9/feed", name=f"Blog {MARKUP}")

    searched = digest(rt, "skills", "search", "C++")
    feeds = digest(rt, "feeds", "list")
    subscriptions = digest(rt, "subscribers", "list")

    assert searched.returncode == 0, searched.stderr
    assert f"{MARKUP} [11a4a60b518bf249]" in searched.stdout
    assert f"Blog {MARKUP}" in feeds.stdout
    assert MARKUP in subscriptions.stdout


def test_crawl_exits_1_when_a_feed_failed_and_0_when_every_feed_worked(
    rt: Runtime, server: FeedServer
) -> None:
    server.routes["/feed"] = Route(rss(("c1", "Python 3.14 released", "")))
    add_feed(rt, server.url("/feed"))

    worked = digest(rt, "crawl", "--all", "--json")
    add_feed(rt, server.url("/gone"), name="Gone")
    failed = digest(rt, "crawl", "--all", "--json")

    assert worked.returncode == 0, worked.stderr
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    assert report["totals"]["errors"] == 1 and report["totals"]["ok"] + report["totals"]["not_modified"] == 1


def test_status_exits_1_without_a_beat_tick_or_while_sending_is_paused(rt: Runtime) -> None:
    no_beat = digest(rt, "status", "--json")
    (rt.settings.home / "celerybeat-schedule").touch()
    healthy = digest(rt, "status")
    with transaction(rt.sessions) as session:
        sending.set_paused(session, paused=True, actor="test", now=datetime.now(UTC))
    paused = digest(rt, "status")

    assert no_beat.returncode == 1, no_beat.stderr
    assert json.loads(no_beat.stdout)["problems"] == ["beat: no tick in two periods"]
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "unhealthy" not in healthy.stdout
    assert paused.returncode == 1
    assert "unhealthy: sending is paused" in paused.stdout


def test_send_due_reports_every_delivery_after_a_temporary_refusal_and_exits_1_for_a_permanent_one(
    rt: Runtime, server: FeedServer
) -> None:
    started = datetime.now(UTC)
    addresses = ["one@example.com", "two@example.com", "later@example.com", "gone@example.com"]
    with transaction(rt.sessions) as session:
        for address in addresses:
            subscribe(session, address, ["Python"], Schedule("hourly", 8, 0, "UTC"), started, confirmed=True)
    # Undated, so it counts as published when crawled: digests carry only fresh items (issue 16).
    server.routes["/feed"] = Route(rss(("p1", "Python 3.14 released", "Free-threaded."), published=None))
    source_id = add_feed(rt, server.url("/feed"))
    assert crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, started, random.Random(1))
    replies = {"later@example.com": "451 4.3.0 try again later", "gone@example.com": "550 5.1.1 no such user"}
    later = (started + timedelta(hours=1)).isoformat()

    with smtp_sink() as sink:
        sink.refuse = replies.get
        done = digest(rt, "send-due", "--now", later, "--json", DIGEST_MAIL_URL=sink.url)

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["sent"], report["pending"], report["failed"]) == (2, 1, 1)
    [pending] = report["pending_deliveries"]
    [failed] = report["failed_deliveries"]
    assert "451" in pending["reason"] and "550" in failed["reason"]
    assert sorted(message["To"] for message in sink.messages) == ["one@example.com", "two@example.com"]


def test_send_due_exits_0_when_the_only_trouble_is_temporary(rt: Runtime, server: FeedServer) -> None:
    started = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        for address in ("one@example.com", "later@example.com"):
            subscribe(session, address, ["Python"], Schedule("hourly", 8, 0, "UTC"), started, confirmed=True)
    server.routes["/feed"] = Route(rss(("p1", "Python 3.14 released", "Free-threaded."), published=None))
    source_id = add_feed(rt, server.url("/feed"))
    crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, started, random.Random(1))
    later = (started + timedelta(hours=1)).isoformat()

    with smtp_sink() as sink:
        sink.refuse = {"later@example.com": "451 4.3.0 try again later"}.get
        done = digest(rt, "send-due", "--now", later, DIGEST_MAIL_URL=sink.url)

    assert done.returncode == 0, done.stderr
    assert "1 sent, 0 skipped, 1 pending for a retry, 0 failed" in done.stdout
    assert "pending: SMTP 451" in done.stdout


def test_an_unknown_skill_gets_the_same_suggestions_everywhere(rt: Runtime) -> None:
    subscribed = digest(rt, "subscribe", "reader@example.com", "--skill", "pythn", "--confirmed")
    stats = digest(rt, "skills", "stats", "pythn")
    nothing = digest(rt, "skills", "stats", "nosuch")

    assert subscribed.returncode == 1
    assert "no skill called 'pythn'; did you mean Python?" in subscribed.stderr
    assert "no skill called 'pythn'; did you mean Python?" in stats.stderr
    assert nothing.returncode == 1
    assert "no skill called 'nosuch'; no skill has a close name" in nothing.stderr
    assert "nothing close" not in nothing.stderr
