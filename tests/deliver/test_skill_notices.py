"""A subscriber whose followed skill a taxonomy change merged or dropped is told once, in the next digest,
with the nearest skills offered; the replay of that digest is byte-identical (issue 15, item 7)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver import digests
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.ingest import crawl, taxonomy
from digest.ingest.skills import resolve_skill
from digest.models import SkillNotice, Source
from digest.records import DeliveryOutcome
from digest.runtime import Runtime
from tests.support import FeedServer, Route, feed_server, rss

HOURLY = Schedule("hourly", 8, 0, "UTC")
SMALL = Path(__file__).parent.parent / "data" / "taxonomy-small.jsonl"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def publish(rt: Runtime, server: FeedServer, when: datetime, *titles: str) -> None:
    server.routes["/feed"] = Route(
        rss(*[(f"{when.isoformat()}-{n}", title, "") for n, title in enumerate(titles)], published=None)
    )
    with transaction(rt.sessions) as session:
        source = session.scalars(select(Source)).first()
        if source is None:
            source = Source(
                url=server.url("/feed"), name="Loopback", kind="news", next_fetch_at=when, created_at=when
            )
            session.add(source)
            session.flush()
        source_id = source.id
    outcome = crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, when, random.Random(1))
    assert outcome.status == "ok"


def send_due(rt: Runtime, now: datetime) -> list[DeliveryOutcome]:
    return [
        digests.send_delivery(
            rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
        )
        for batch in digests.dispatch_due(rt.sessions, now)
        for delivery_id in batch
    ]


def follow(rt: Runtime, when: datetime, *skills: str) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, "reader@example.com", skills, HOURLY, when, confirmed=True)


def without(tmp_path: Path, key: str) -> taxonomy.Taxonomy:
    """The small test taxonomy without the skill ``key``, as a new version."""
    lines = SMALL.read_text(encoding="utf-8").splitlines()
    meta = json.loads(lines[0])
    meta["_meta"]["version"] = f"test-small-without-{key}"
    kept = [line for line in lines[1:] if json.loads(line)["key"] != key]
    path = tmp_path / "taxonomy.jsonl"
    path.write_text("\n".join([json.dumps(meta), *kept]) + "\n", encoding="utf-8")
    return taxonomy.read_taxonomy(path)


def replay_matches(rt: Runtime, delivery_id: int) -> str:
    """The text of a sent digest re-rendered from its manifest, checked to be the bytes that were sent."""
    rendered = digests.render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)
    assert rendered.email.body_hash == rendered.hash_stored
    return rendered.email.text


def test_a_merged_skill_is_told_once_with_its_survivor_and_the_nearest_skills(
    rt: Runtime, server: FeedServer
) -> None:
    follow(rt, at("2026-11-16T05:10"), "MLOps", "Kubernetes")
    with transaction(rt.sessions) as session:
        mlops, into = resolve_skill(session, "MLOps"), resolve_skill(session, "AI infrastructure")
        taxonomy.merge(session, mlops, into, at("2026-11-16T05:15"))
    publish(rt, server, at("2026-11-16T05:30"), "Kubernetes 1.35 released")

    first = send_due(rt, at("2026-11-16T06:00:30"))
    publish(rt, server, at("2026-11-16T06:30"), "Kubernetes 1.36 released")
    second = send_due(rt, at("2026-11-16T07:00:30"))

    assert [outcome.status for outcome in first + second] == ["sent", "sent"]
    text = replay_matches(rt, first[0].delivery_id)
    assert "MLOps is now part of AI infrastructure" in " ".join(text.split())
    assert "/skills/ai-infrastructure" in text and "/skills/machine-learning" in text  # its parent
    assert "/manage/" in text
    later = digests.render_delivery(rt.sessions, second[0].delivery_id, rt.composer, rt.delivery)
    assert "MLOps" not in later.email.text and "MLOps" not in later.email.html


def test_a_dropped_skill_is_told_in_the_next_digest_sent_not_in_a_skipped_one(
    rt: Runtime, server: FeedServer, tmp_path: Path
) -> None:
    follow(rt, at("2026-11-16T05:10"), "Kubernetes", "Docker")
    with transaction(rt.sessions) as session:
        result = taxonomy.load(session, without(tmp_path, "kubernetes"), at("2026-11-16T05:15"), replace=True)
    assert result.retired == 1

    empty = send_due(rt, at("2026-11-16T06:00:30"))  # nothing new: skipped, so the notice waits
    publish(rt, server, at("2026-11-16T06:30"), "Docker 29 released")
    sent = send_due(rt, at("2026-11-16T07:00:30"))

    assert [outcome.status for outcome in empty + sent] == ["skipped", "sent"]
    text = replay_matches(rt, sent[0].delivery_id)
    assert "Kubernetes is no longer tracked" in " ".join(text.split())
    assert "/skills/docker" in text  # its related skill, offered
    html = digests.render_delivery(rt.sessions, sent[0].delivery_id, rt.composer, rt.delivery).email.html
    assert "Kubernetes</strong> is no longer tracked" in html and "/skills/docker" in html
    with transaction(rt.sessions) as session:
        notices = session.scalars(select(SkillNotice)).all()
        assert [notice.delivery_id for notice in notices] == [sent[0].delivery_id]


def test_a_reload_that_drops_the_skill_again_tells_no_one_twice(rt: Runtime, tmp_path: Path) -> None:
    follow(rt, at("2026-11-16T05:10"), "Kubernetes")
    dropped = without(tmp_path, "kubernetes")
    with transaction(rt.sessions) as session:
        taxonomy.load(session, dropped, at("2026-11-16T05:15"), replace=True)
    again = taxonomy.Taxonomy("test-small-again", dropped.entities, dropped.meta)
    with transaction(rt.sessions) as session:
        taxonomy.load(session, again, at("2026-11-16T05:20"), replace=True)
        assert len(session.scalars(select(SkillNotice)).all()) == 1


def test_the_preview_shows_a_pending_notice_without_marking_it(rt: Runtime, server: FeedServer) -> None:
    follow(rt, at("2026-11-16T05:10"), "MLOps", "Kubernetes")
    with transaction(rt.sessions) as session:
        taxonomy.merge(
            session,
            resolve_skill(session, "MLOps"),
            resolve_skill(session, "Kubernetes"),
            at("2026-11-16T05:15"),
        )

    shown = digests.preview(
        rt.sessions, "reader@example.com", None, at("2026-11-16T05:40"), rt.composer, rt.delivery
    )

    assert [notice.skill_name for notice in shown.content.notices] == ["MLOps"]
    with transaction(rt.sessions) as session:
        assert session.scalars(select(SkillNotice.delivery_id)).all() == [None]
