"""The deliver wing: windows, exactly-once delivery, Maildir and real SMTP, replay. Clock pinned."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event, select, text, update

from digest.db import transaction
from digest.deliver import digests, suppression
from digest.deliver.cadence import Schedule
from digest.deliver.compose import archive_templates, build_message
from digest.deliver.digests import dispatch as dispatch_module
from digest.deliver.mail import MaildirMailer, mailer_for
from digest.deliver.outbox import REQUEUE_AFTER, SEND_LEASE
from digest.deliver.subscribers import subscribe
from digest.deliver.unsubscribe import unsubscribe
from digest.errors import MailError
from digest.ingest import crawl
from digest.ingest.store import TAG_GRACE
from digest.models import Delivery, DeliveryItem, Source, Subscriber
from digest.records import DeliveryOutcome, DigestContent, DigestSection, ItemForDigest
from digest.runtime import Runtime
from tests.support import FeedServer, Route, feed_server, rss, smtp_sink

BERLIN_DAILY = Schedule("daily", 8, 0, "Europe/Berlin")
HOURLY = Schedule("hourly", 8, 0, "UTC")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


class Ingest:
    """Publishes items on the loopback feed server and crawls them at a given time."""

    def __init__(self, rt: Runtime, server: FeedServer) -> None:
        self.rt, self.server, self.count = rt, server, 0

    def __call__(
        self, at: datetime, *items: tuple[str, str], path: str = "/feed", kind: str = "news", tag: bool = True
    ) -> list[int]:
        entries = []
        for title, body in items:
            self.count += 1
            entries.append((f"{path}-{self.count}", title, body))
        self.server.routes[path] = Route(rss(*entries, published=None))
        with transaction(self.rt.sessions) as session:
            source = session.scalars(select(Source).where(Source.url == self.server.url(path))).first()
            if source is None:
                source = Source(
                    url=self.server.url(path), name=path, kind=kind, next_fetch_at=at, created_at=at
                )
                session.add(source)
                session.flush()
            source_id = source.id
        if tag:
            outcome = crawl.refresh_and_tag(
                self.rt.sessions, self.rt.fetcher, self.rt.matchers, source_id, at, random.Random(1)
            )
        else:
            outcome = crawl.refresh_source(self.rt.sessions, self.rt.fetcher, source_id, at, random.Random(1))
        assert outcome.status == "ok", outcome.error
        return list(outcome.changed)


@pytest.fixture
def ingest(rt: Runtime, server: FeedServer) -> Ingest:
    return Ingest(rt, server)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def follow(rt: Runtime, email: str, schedule: Schedule, when: datetime, *skills: str) -> int:
    with transaction(rt.sessions) as session:
        return subscribe(session, email, skills or ("Python",), schedule, when, confirmed=True).id


def dispatch(rt: Runtime, now: datetime) -> list[int]:
    return [delivery_id for batch in digests.dispatch_due(rt.sessions, now) for delivery_id in batch]


def send_all(
    rt: Runtime, now: datetime, mailer: object | None = None, only: list[int] | None = None
) -> list[DeliveryOutcome]:
    """Dispatch at ``now`` and send what it opened, as the worker would (or send ``only`` these)."""
    return [
        digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=mailer or rt.mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=now,
        )
        for delivery_id in (dispatch(rt, now) if only is None else only)
    ]


def outbox(rt: Runtime) -> list[EmailMessage]:
    mailer = rt.mailer
    assert isinstance(mailer, MaildirMailer)
    messages = []
    for path in sorted((mailer.path / "new").iterdir()):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def test_it_sends_one_daily_digest_with_both_parts_and_bulk_headers(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"), "Python", "Kubernetes")
    ingest(
        at("2026-11-15T12:00"),
        ("Python 3.13 is out", "Faster startup."),
        ("Kubernetes 1.35", "New scheduler."),
    )

    outcomes = send_all(rt, at("2026-11-16T07:00:30"))

    assert [(o.status, o.items) for o in outcomes] == [("sent", 2)]
    [message] = outbox(rt)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "Python 3.13 is out" in text.get_content() and "Kubernetes 1.35" in text.get_content()
    assert "Python 3.13 is out" in html.get_content()
    assert message["Subject"].endswith(" + 1 more · Kubernetes, Python") or message["Subject"].endswith(
        " + 1 more · Python, Kubernetes"
    )
    assert message["Message-ID"] == outcomes[0].message_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/u/" in message["List-Unsubscribe"] and "mailto:" in message["List-Unsubscribe"]
    assert message["Precedence"] == "bulk"


def test_it_never_sends_a_slot_twice(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    [first] = send_all(rt, at("2026-11-16T07:00:30"))

    again = send_all(rt, at("2026-11-16T07:00:30"))
    redelivered = digests.send_delivery(
        rt.sessions,
        first.delivery_id,
        mailer=rt.mailer,
        composer=rt.composer,
        config=rt.delivery,
        now=at("2026-11-16T07:01"),
    )

    assert again == []
    assert redelivered.status == "sent"
    assert len(outbox(rt)) == 1


def test_it_sends_one_digest_covering_an_outage(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T06:10"))
    for hour in (6, 7, 8):
        ingest(at(f"2026-11-16T0{hour}:30"), (f"Python news at {hour}", ""))

    outcomes = send_all(rt, at("2026-11-16T09:05"))
    later = send_all(rt, at("2026-11-16T10:00"))

    assert [(o.status, o.items) for o in outcomes] == [("sent", 3)]
    assert [o.status for o in later] == ["skipped"]
    with transaction(rt.sessions) as session:
        windows = session.execute(
            select(Delivery.window_start, Delivery.window_end).order_by(Delivery.id)
        ).all()
    assert windows == [
        (at("2026-11-16T06:00"), at("2026-11-16T09:00")),
        (at("2026-11-16T09:00"), at("2026-11-16T10:00")),
    ]


def test_each_item_lands_in_exactly_one_window(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:59:59"), ("Python before", ""))
    ingest(at("2026-11-16T06:00"), ("Python on the boundary", ""))
    send_all(rt, at("2026-11-16T06:00"))
    send_all(rt, at("2026-11-16T07:00"))

    with transaction(rt.sessions) as session:
        carried = session.execute(
            select(DeliveryItem.delivery_id, DeliveryItem.item_id).order_by(DeliveryItem.delivery_id)
        ).all()
    assert [delivery for delivery, _ in carried] == [1, 2]
    assert len({item for _, item in carried}) == 2


def test_it_skips_an_empty_window_without_mail(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Quarterly results", "Nothing technical."))

    outcomes = send_all(rt, at("2026-11-16T07:00:30"))

    assert [o.status for o in outcomes] == ["skipped"]
    assert outbox(rt) == []


def test_it_does_not_mail_an_unsubscribed_reader(rt: Runtime, ingest: Ingest) -> None:
    subscription = follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    with transaction(rt.sessions) as session:
        unsubscribe(session, subscription)

    assert send_all(rt, at("2026-11-16T07:00:30")) == []
    assert outbox(rt) == []


def test_an_unsubscribe_wins_over_a_digest_already_queued(rt: Runtime, ingest: Ingest) -> None:
    subscription = follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    [queued] = dispatch(rt, at("2026-11-16T07:00:30"))
    with transaction(rt.sessions) as session:
        unsubscribe(session, subscription)

    outcome = digests.send_delivery(
        rt.sessions,
        queued,
        mailer=rt.mailer,
        composer=rt.composer,
        config=rt.delivery,
        now=at("2026-11-16T07:01"),
    )

    assert (outcome.status, outcome.error) == ("skipped", "subscription is unsubscribed")
    assert outbox(rt) == []


def test_a_story_in_two_feeds_or_two_skills_appears_once(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"), "Python", "Kubernetes")
    ingest(at("2026-11-15T12:00"), ("Python on Kubernetes", "Same story."), path="/a")
    ingest.server.routes["/b"] = Route(rss(("/a-1", "Python on Kubernetes (copy)", "Same story.")))
    with transaction(rt.sessions) as session:
        session.add(
            Source(
                url=ingest.server.url("/b"),
                name="b",
                kind="blog",
                next_fetch_at=at("2026-11-15T12:00"),
                created_at=at("2026-11-15T12:00"),
            )
        )
    for source_id in crawl.claim_due_sources(rt.sessions, at("2026-11-15T12:00")):
        crawl.refresh_and_tag(
            rt.sessions, rt.fetcher, rt.matchers, source_id, at("2026-11-15T12:00"), random.Random(1)
        )

    [outcome] = send_all(rt, at("2026-11-16T07:00:30"))

    assert outcome.items == 1


def test_feed_markup_is_reduced_to_text_before_it_reaches_an_email(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(
        at("2026-11-15T12:00"),
        ("Python &lt;script&gt;alert(1)&lt;/script&gt; tips", "&lt;b&gt;bold&lt;/b&gt;"),
    )

    send_all(rt, at("2026-11-16T07:00:30"))

    [message] = outbox(rt)
    html = message.get_body(("html",))
    assert html is not None
    assert "alert(1)" not in html.get_content()
    assert "Python tips" in html.get_content() and "<b>bold</b>" not in html.get_content()


def test_text_that_looks_like_markup_or_headers_is_escaped(rt: Runtime) -> None:
    hostile = "<script>alert(1)</script>\r\nBcc: victim@example.org"
    item = ItemForDigest(
        1,
        hostile,
        "https://example.com/x",
        hostile,
        "src",
        "news",
        None,
        at("2026-11-15T12:00"),
        "s",
        ("Python",),
        True,
        1.0,
    )
    content = DigestContent(
        1,
        "reader@example.com",
        "daily",
        "UTC",
        at("2026-11-15T07:00"),
        at("2026-11-16T07:00"),
        (DigestSection("s", "Python", "python", (item,)),),
        unsubscribe_url="http://x/u/t",
    )

    email = rt.composer.digest(content)
    message = build_message(
        email,
        sender="d@example.com",
        recipient="reader@example.com",
        message_id_value="<digest.1@example.com>",
        date=at("2026-11-16T07:00"),
        unsubscribe_url="http://x/u/t",
    )

    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert message["Bcc"] is None
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None


def test_a_replay_renders_the_same_bytes_as_were_sent(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"), "Python", "Rust")
    ingest(at("2026-11-15T12:00"), ("Python and Rust", ""), ("Rust only", ""), ("Python only", ""))
    [outcome] = send_all(rt, at("2026-11-16T07:00:30"))
    ingest(at("2026-11-15T13:00"), ("A late Python item", ""))

    rendered = digests.render_delivery(rt.sessions, outcome.delivery_id, rt.composer, rt.delivery)

    assert rendered.hash_stored is not None and rendered.email.body_hash == rendered.hash_stored
    assert "A late Python item" not in rendered.email.text
    [sent] = outbox(rt)
    assert str(rendered.message["List-Unsubscribe"]).strip() == str(sent["List-Unsubscribe"]).strip()
    sent_text, replay_text = sent.get_body(("plain",)), rendered.message.get_body(("plain",))
    assert sent_text is not None and replay_text is not None
    assert replay_text.get_content() == sent_text.get_content()


def test_it_delivers_over_real_smtp(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        outcomes = send_all(rt, at("2026-11-16T07:00:30"), mailer)
        mailer.close()

    assert [o.status for o in outcomes] == ["sent"]
    [message] = sink.messages
    assert message["To"] == "reader@example.com"
    assert message.get_content_type() == "multipart/alternative"
    assert all(len(line) <= 998 for line in message.as_bytes().splitlines())


def test_a_permanent_smtp_refusal_marks_the_delivery_failed(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "550 5.1.1 no such user"
        mailer = mailer_for(sink.url)
        outcomes = send_all(rt, at("2026-11-16T07:00:30"), mailer)
        mailer.close()

    assert [o.status for o in outcomes] == ["failed"]
    assert outcomes[0].error and "550" in outcomes[0].error


def test_a_temporary_smtp_refusal_is_retried_and_sent_once(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    now = at("2026-11-16T07:00:30")
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "451 4.3.0 try again later"
        mailer = mailer_for(sink.url)
        [delivery_id] = dispatch(rt, now)
        with pytest.raises(MailError) as refused:
            digests.send_delivery(
                rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=now
            )
        assert not refused.value.permanent
        sink.refuse = lambda _rcpt: None
        retried = digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=now + timedelta(minutes=1),
        )
        mailer.close()

    assert retried.status == "sent"
    assert len(sink.messages) == 1


def test_a_delivery_abandoned_mid_send_is_taken_up_again(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", BERLIN_DAILY, at("2026-11-15T10:00"))
    ingest(at("2026-11-15T12:00"), ("Python tips", ""))
    now = at("2026-11-16T07:00:30")
    [delivery_id] = dispatch(rt, now)
    with transaction(rt.sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.status, delivery.claimed_at = "sending", now

    assert dispatch(rt, now + timedelta(minutes=1)) == []
    assert send_all(rt, now + SEND_LEASE + timedelta(minutes=1))[0].status == "sent"
    assert len(outbox(rt)) == 1


def test_the_maildir_stores_a_message_once_per_message_id(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path / "box")
    message = EmailMessage()
    message["Message-ID"] = "<digest.1@example.com>"
    message.set_content("hello")

    mailer.send(message)
    mailer.send(replace_id(message, "<digest.1@example.com>"))

    assert len(list((tmp_path / "box" / "new").iterdir())) == 1


def replace_id(message: EmailMessage, value: str) -> EmailMessage:
    copy = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(copy, EmailMessage)
    del copy["Message-ID"]
    copy["Message-ID"] = value
    return copy


def test_a_dispatch_waits_for_the_matcher_to_tag_what_its_window_holds(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    untagged = ingest(at("2026-11-16T05:59:50"), ("Python caught at the last second", ""), tag=False)

    early = send_all(rt, at("2026-11-16T06:00:05"))
    crawl.tag_items(rt.sessions, rt.matchers, untagged)
    on_time = send_all(rt, at("2026-11-16T06:01:05"))

    assert early == []
    assert [(o.status, o.items) for o in on_time] == [("sent", 1)]


def test_an_item_the_matcher_never_reaches_holds_no_digest_back_for_long(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:30"), ("Python tagged", ""))
    ingest(at("2026-11-16T05:59:50"), ("Python stuck", ""), path="/stuck", tag=False)

    held = send_all(rt, at("2026-11-16T06:05"))
    released = send_all(rt, at("2026-11-16T06:00") + TAG_GRACE + timedelta(minutes=1))

    assert held == []
    assert [(o.status, o.items) for o in released] == [("sent", 1)]


def test_three_permanent_refusals_in_a_row_mark_the_subscriber_bouncing(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    statuses = []
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "550 5.1.1 no such user"
        mailer = mailer_for(sink.url)
        for hour in range(6, 10):
            ingest(at(f"2026-11-16T0{hour - 1}:30"), (f"Python at {hour}", ""))
            statuses += [o.status for o in send_all(rt, at(f"2026-11-16T0{hour}:00:30"), mailer)]
        mailer.close()

    assert statuses == ["failed", "failed", "failed"]
    with transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.state, subscriber.bounces) == ("bouncing", 3)
        failed = session.scalars(select(Delivery.id).where(Delivery.status == "failed")).all()
    assert len(failed) == 3
    # No more digests until the address is fixed: it is suppressed (issue 14); lifting that (the person's
    # own new confirmation, or ops) and confirming again is the fix.
    ingest(at("2026-11-16T09:30"), ("Python at ten", ""))
    assert send_all(rt, at("2026-11-16T10:00:30")) == []
    with transaction(rt.sessions) as session:
        entry = suppression.find(session, rt.settings.secret_key, "reader@example.com")
        assert entry is not None and entry.reason == "bounce"
        suppression.lift(session, rt.settings.secret_key, "reader@example.com")
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T10:10"))
    with transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.state, subscriber.bounces) == ("active", 0)
    final = send_all(rt, at("2026-11-16T11:00:30"))
    # One digest covers the time the address bounced: what the failed ones carried stays replayable.
    assert [(o.status, o.items) for o in final] == [("sent", 2)]


def test_a_delivery_in_between_resets_the_count_of_refusals(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    refusals = iter(["550 5.1.1 full", "550 5.1.1 full", None, "550 5.1.1 full", "550 5.1.1 full"])
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        for hour in range(6, 11):
            refusal = next(refusals)
            sink.refuse = lambda _rcpt, refusal=refusal: refusal  # type: ignore[misc]
            ingest(at(f"2026-11-16T{hour - 1:02d}:30"), (f"Python at {hour}", ""))
            send_all(rt, at(f"2026-11-16T{hour:02d}:00:30"), mailer)
        mailer.close()

    with transaction(rt.sessions) as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.state, subscriber.bounces) == ("active", 2)


def test_the_sql_statements_of_a_digest_do_not_grow_with_its_items(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "few@example.com", HOURLY, at("2026-11-16T05:10"), "Kubernetes")
    follow(rt, "many@example.com", HOURLY, at("2026-11-16T05:10"), "Python")
    ingest(at("2026-11-16T05:20"), ("Kubernetes 1.35", ""))
    ingest(at("2026-11-16T05:30"), *[(f"Python tip {n}", "") for n in range(15)], path="/python")
    with transaction(rt.sessions) as session:
        # The first digest of a template version archives it, once per process: not part of the measure.
        archive_templates(
            session, rt.composer, "digest", rt.composer.versions["digest"], at("2026-11-16T06:00")
        )
    statements: list[str] = []
    event.listen(rt.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    delivery_ids = dispatch(rt, at("2026-11-16T06:00:30"))
    counts = []
    for delivery_id in delivery_ids:
        statements.clear()
        outcome = digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=rt.mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=at("2026-11-16T06:00:40"),
        )
        counts.append((outcome.items, len(statements)))

    assert sorted(items for items, _ in counts) == [1, 15]
    assert counts[0][1] == counts[1][1] <= 10


def test_a_second_dispatch_at_the_same_time_opens_nothing_twice(rt: Runtime, ingest: Ingest) -> None:
    for number in range(30):
        follow(rt, f"reader{number}@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:30"), ("Python tips", ""))
    now = at("2026-11-16T06:00:30")
    first, second = (
        digests.dispatch_due(rt.sessions, now, batch=7),
        digests.dispatch_due(rt.sessions, now, batch=7),
    )

    opened: list[int] = []
    # Interleaved batch by batch, as two ticks or two beats running at once would be.
    running = [first, second]
    while running:
        for dispatcher in list(running):
            batch = next(dispatcher, None)
            if batch is None:
                running.remove(dispatcher)
            else:
                opened += batch

    assert len(opened) == len(set(opened)) == 30
    with transaction(rt.sessions) as session:
        assert len(session.scalars(select(Delivery.id)).all()) == 30


def test_a_batch_opens_windows_only_for_active_subscribers_and_each_schedule_its_own(
    rt: Runtime, ingest: Ingest
) -> None:
    # Two schedules in one batch (the set-based dispatch computes a window per schedule), and a bouncing
    # subscriber in the middle of it, who gets none.
    berlin = Schedule("daily", 6, 0, "Europe/Berlin")  # 05:00 UTC in November
    ids = [
        follow(rt, f"reader{n}@example.com", HOURLY if n % 2 else berlin, at("2026-11-15T05:10"))
        for n in range(6)
    ]
    with transaction(rt.sessions) as session:
        session.execute(
            update(Subscriber).where(Subscriber.email == "reader3@example.com").values(state="bouncing")
        )
    ingest(at("2026-11-16T05:30"), ("Python tips", ""))

    opened = [
        d for batch in digests.dispatch_due(rt.sessions, at("2026-11-16T06:00:30"), batch=4) for d in batch
    ]

    with transaction(rt.sessions) as session:
        windows = {
            (row.subscription_id, row.window_end.isoformat())
            for row in session.execute(select(Delivery.subscription_id, Delivery.window_end))
        }
    hourly_end, daily_end = "2026-11-16T06:00:00+00:00", "2026-11-16T05:00:00+00:00"
    assert len(opened) == 5
    assert windows == {(sid, hourly_end if n % 2 else daily_end) for n, sid in enumerate(ids) if n != 3}


def test_a_pending_delivery_whose_task_was_lost_is_enqueued_again_later(rt: Runtime, ingest: Ingest) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:30"), ("Python tips", ""))
    now = at("2026-11-16T06:00:30")
    [lost] = dispatch(rt, now)

    soon = dispatch(rt, now + timedelta(minutes=5))
    later = dispatch(rt, now + REQUEUE_AFTER + timedelta(minutes=1))
    again = dispatch(rt, now + REQUEUE_AFTER + timedelta(minutes=2))

    assert (soon, later, again) == ([], [lost], [])


@pytest.mark.parametrize("crash", ["before the manifest commits", "after the manifest", "after the send"])
def test_a_digest_interrupted_anywhere_is_delivered_once_when_taken_up_again(
    rt: Runtime, ingest: Ingest, crash: str
) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:30"), ("Python tips", ""))
    now = at("2026-11-16T06:00:30")
    [delivery_id] = dispatch(rt, now)

    class Crash(Exception):
        pass

    class CrashingMailer:
        def send(self, message: EmailMessage) -> None:
            if crash == "after the send":
                rt.mailer.send(message)
            raise Crash

        def close(self) -> None:
            pass

    composer = rt.composer
    if crash == "before the manifest commits":

        class CrashingComposer(type(composer)):  # type: ignore[misc]
            def digest(self, content: DigestContent) -> object:
                raise Crash

        composer = CrashingComposer()
    with pytest.raises(Crash):
        digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=CrashingMailer() if crash != "before the manifest commits" else rt.mailer,
            composer=composer,
            config=rt.delivery,
            now=now,
        )
    # What follows a crash: the task is redelivered at once (acks_late), and a dispatch after the lease
    # enqueues whatever the dead worker held.
    redelivered = send_all(rt, now + timedelta(seconds=1), only=[delivery_id])
    later = now + SEND_LEASE + timedelta(minutes=1)
    requeued = send_all(rt, later)

    assert [o.status for o in redelivered + requeued if o.status != "sending"] == ["sent"]
    [message] = outbox(rt)
    with transaction(rt.sessions) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        assert (delivery.status, delivery.message_id) == ("sent", message["Message-ID"])


def test_a_dispatch_that_outgrows_the_deliveries_table_refreshes_its_statistics(
    rt: Runtime, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    monkeypatch.setattr(dispatch_module, "ANALYZE_AFTER", 5)
    for number in range(12):
        follow(rt, f"reader{number}@example.com", HOURLY, at("2026-11-16T05:10"))
    ingest(at("2026-11-16T05:30"), ("Python tips", ""))

    def estimated() -> float:
        with rt.engine.connect() as connection:
            return float(
                connection.execute(
                    text("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")
                ).scalar_one()
            )

    before = estimated()
    opened = [
        delivery
        for batch in digests.dispatch_due(rt.sessions, at("2026-11-16T06:00:30"), batch=5)
        for delivery in batch
    ]

    assert before <= 0 and len(opened) == 12
    assert estimated() >= 5
