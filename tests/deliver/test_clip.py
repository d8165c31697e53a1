"""Gmail clips a message whose HTML passes 102 KB and hides its end, the unsubscribe link with it (issue 17):
a digest keeps its HTML under 90 KB whatever ``DIGEST_MAX_ITEMS`` allows, the rest in "+N more", and its
manifest holds what the email showed, so a replay is the same bytes. On SQLite and PostgreSQL (``rt``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from digest.db import transaction
from digest.deliver import digests
from digest.deliver.compose import Composer
from digest.deliver.digests.render import MAX_HTML_BYTES, kept, within_clip
from digest.models import DeliveryItem
from digest.records import DigestContent, DigestSection
from digest.runtime import Runtime
from tests.deliver.test_digests import HOURLY, Ingest, at, follow, outbox
from tests.deliver.test_email_templates import digest_content, item
from tests.support import FeedServer, feed_server

MAX_ITEMS = 200  # the largest DIGEST_MAX_ITEMS accepts
SUMMARY = "Python release notes, benchmarks and the migration guide, line by line. " * 8


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def big_digest(sections: int, per_section: int) -> DigestContent:
    return digest_content(
        sections=tuple(
            DigestSection(
                f"s{s}",
                f"Skill {s}",
                f"skill-{s}",
                tuple(
                    item(
                        s * 1000 + n,
                        f"Story {s}.{n} about Python",
                        f"https://e.example/{s}/{n}",
                        "news",
                        summary=SUMMARY,
                    )
                    for n in range(per_section)
                ),
            )
            for s in range(sections)
        ),
        more=0,
    )


def test_a_digest_of_the_most_items_allowed_keeps_as_many_as_fit_under_the_clip() -> None:
    composer = Composer()
    said = big_digest(4, MAX_ITEMS // 4)
    assert len(composer.digest(said).html.encode()) > 2 * MAX_HTML_BYTES

    shown, email = within_clip(said, composer.digest)

    assert len(email.html.encode()) <= MAX_HTML_BYTES
    # As many as fit: one item more would pass the limit.
    assert len(composer.digest(kept(said, shown.item_count + 1)).html.encode()) > MAX_HTML_BYTES
    # Nothing is lost from the count: what is not shown is "+N more", per section or for the skills left out.
    assert shown.item_count + shown.more == MAX_ITEMS
    assert said.unsubscribe_url in email.html  # the footer's unsubscribe link, within the clip
    assert f"+{MAX_ITEMS - shown.item_count - sum(s.more for s in shown.sections)} more item" in email.text
    assert shown.sections[-1].more > 0 and f"+{shown.sections[-1].more} more Skill" in email.text


def test_a_digest_under_the_clip_is_left_as_it_is() -> None:
    composer = Composer()
    said = big_digest(2, 5)

    shown, email = within_clip(said, composer.digest)

    assert shown == said and email == composer.digest(said)


def test_a_sent_digest_at_the_maximum_is_under_the_clip_and_its_replay_is_the_same_bytes(
    rt: Runtime, server: FeedServer
) -> None:
    roomy = Runtime(rt.settings.model_copy(update={"max_items": MAX_ITEMS}))
    ingest = Ingest(roomy, server)
    follow(roomy, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T06:20"), *((f"Python story {n}", SUMMARY) for n in range(MAX_ITEMS)))
    now = at("2026-11-16T07:00:30")
    [delivery_id] = [i for batch in digests.dispatch_due(roomy.sessions, now) for i in batch]

    outcome = digests.send_delivery(
        roomy.sessions,
        delivery_id,
        mailer=roomy.mailer,
        composer=roomy.composer,
        config=roomy.delivery,
        now=now,
    )

    [message] = outbox(roomy)
    html = message.get_body(("html",))
    assert html is not None and len(html.get_content().encode()) <= MAX_HTML_BYTES
    with transaction(roomy.sessions) as session:
        stored = session.scalar(
            select(func.count()).select_from(DeliveryItem).where(DeliveryItem.delivery_id == delivery_id)
        )
    assert outcome.status == "sent" and 1 < outcome.items == stored < MAX_ITEMS
    replayed = digests.render_delivery(roomy.sessions, delivery_id, roomy.composer, roomy.delivery)
    assert replayed.email.body_hash == replayed.hash_stored
    roomy.close()
