"""One story told by several feeds is one digest entry, "also in N sources" with their links (issue 16).

The copies an entry listed are kept in its manifest row, so a replay shows what was sent even when more
copies of the story arrive later. Each test runs on SQLite and PostgreSQL (``rt``).
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from digest.db import transaction
from digest.deliver import digests
from digest.deliver.selection import select_window
from digest.models import DeliveryItem, Item, Source
from digest.runtime import Runtime
from tests.deliver.test_digests import HOURLY, Ingest, at, follow, outbox, send_all
from tests.support import FeedServer, feed_server

STORY = (
    "Python 3.15 will remove the GIL by default",
    "The steering council accepted the proposal: free-threaded builds become the default next year.",
)
SOURCES = ("/wire", "/blog", "/tags")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


@pytest.fixture
def ingest(rt: Runtime, server: FeedServer) -> Ingest:
    return Ingest(rt, server)


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def copies(rt: Runtime) -> list[tuple[str, str]]:
    """(source name, item URL) of every stored item, in the order they were stored."""
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(Source.name, Item.url).join(Source, Source.id == Item.source_id).order_by(Item.id)
        ).all()
    return [(name, url) for name, url in rows]


def send_three_copies(rt: Runtime, ingest: Ingest) -> int:
    """Three feeds carry one story in an hourly window, found at the same time (so the first stored is
    shown: equal worth); the digest's delivery id."""
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    for path in SOURCES:
        ingest(at("2026-11-16T06:20"), STORY, path=path)
    [outcome] = send_all(rt, at("2026-11-16T07:00:30"))
    assert (outcome.status, outcome.items) == ("sent", 1)
    return outcome.delivery_id


def test_three_copies_of_a_story_are_one_entry_also_in_two_sources_with_their_links(
    rt: Runtime, ingest: Ingest
) -> None:
    send_three_copies(rt, ingest)

    [message] = outbox(rt)
    text, html = parts(message)
    (_, shown), *others = copies(rt)
    assert text.count(STORY[0]) == 1 and html.count(STORY[0]) == 1
    assert f"\n    {shown}\n    The steering council" in text
    assert "Also in 2 sources:" in text and "Also in 2 sources:" in html
    for name, url in others:
        assert f"    - {name}\n      {url}\n" in text
        assert f'<a href="{url}"' in html and f">{name}</a>" in html
    with transaction(rt.sessions) as session:
        [stored] = session.scalars(select(DeliveryItem.copies)).all()
    assert [(copy["source"], copy["url"]) for copy in stored] == others


def test_a_replay_after_a_fourth_copy_arrives_is_byte_identical(rt: Runtime, ingest: Ingest) -> None:
    delivery_id = send_three_copies(rt, ingest)
    sent = digests.render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)
    [message] = outbox(rt)

    # A fourth feed's copy, stored later but dated inside the window the digest covered.
    ingest(at("2026-11-16T06:50"), STORY, path="/hn")
    with transaction(rt.sessions) as session:
        now_seen = select_window(
            session, [sent.content.sections[0].skill_id], at("2026-11-16T06:00"), at("2026-11-16T07:00"), 20
        )
    replayed = digests.render_delivery(rt.sessions, delivery_id, rt.composer, rt.delivery)

    assert len(now_seen.sections[0].items[0].also) == 3
    assert replayed.email.body_hash == replayed.hash_stored == sent.email.body_hash
    assert (replayed.email.subject, replayed.email.text, replayed.email.html) == (
        sent.email.subject,
        sent.email.text,
        sent.email.html,
    )
    assert parts(replayed.message) == parts(message)
    assert "Also in 2 sources:" in replayed.email.text


def test_two_different_stories_are_never_one_entry(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    lead = "Bug fixes and a faster import system. See the changelog for details."
    ingest(at("2026-11-16T06:20"), ("Python tools release v1.2", lead), path="/releases")
    ingest(at("2026-11-16T06:21"), ("Python tools release v1.3", lead), path="/mirror")

    [outcome] = send_all(rt, at("2026-11-16T07:00:30"))

    [message] = outbox(rt)
    text, html = parts(message)
    assert outcome.items == 2
    assert "release v1.2" in text and "release v1.3" in text
    assert "Also in" not in text and "Also in" not in html
    with transaction(rt.sessions) as session:
        assert session.scalars(select(DeliveryItem.copies)).all() == [[], []]
