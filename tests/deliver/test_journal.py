"""The sent journal (digest/deliver/journal.py, issue 18 item 4): an accepted message is on local disk before
the database hears of it, and a delivery claimed again is marked sent from it instead of being mailed twice.
Real SQLite files, real SMTP on loopback; the clock is pinned."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from digest.db import transaction
from digest.deliver import alerts, digests, journal, outbox
from digest.deliver.journal import Acceptance, Journal, journal_for
from digest.deliver.mail import Mailer, mailer_for
from digest.deliver.outbox import SEND_LEASE
from digest.errors import JournalError
from digest.models import Delivery
from digest.runtime import Runtime
from tests.deliver.test_alerts import NOW, reader, surge
from tests.deliver.test_digests import Ingest, at
from tests.deliver.test_outbox import SLOT, a_digest, alert_events, digest_events
from tests.support import SmtpSink, feed_server, smtp_sink

ACCEPTED = Acceptance(
    "digest", 7, "<7.x@example.com>", at("2026-11-16T07:00:31"), "250 2.0.0 Ok: queued as AB12"
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
def mailer(sink: SmtpSink) -> Iterator[Mailer]:
    sending = mailer_for(sink.url)
    yield sending
    sending.close()


@pytest.fixture
def ingest(rt: Runtime) -> Iterator[Ingest]:
    with feed_server() as server:
        yield Ingest(rt, server)


def test_an_acceptance_written_by_one_process_is_found_by_another_and_forgotten(tmp_path: Path) -> None:
    worker_a, worker_b = Journal(tmp_path, "host-1"), Journal(tmp_path, "host-2")
    worker_a.record(ACCEPTED)

    found = worker_b.find("digest", 7)

    assert found is not None and (found.acceptance, found.file) == (ACCEPTED, worker_a.path)
    assert worker_b.find("alert", 7) is None and worker_b.find("digest", 8) is None
    # Another process's row goes at once; the file stays (only its owner removes it).
    worker_b.forget("digest", 7, found.file)
    assert worker_a.find("digest", 7) is None and worker_a.path.exists()
    worker_a.close()
    worker_b.close()


def test_its_own_rows_are_dropped_with_the_next_write_and_an_empty_file_on_close(tmp_path: Path) -> None:
    own = Journal(tmp_path, "host-1")
    own.record(ACCEPTED)
    own.forget("digest", 7)
    # Still there: deleting it now would cost a second fsync per message.
    assert own.find("digest", 7) is not None

    own.record(Acceptance("alert", 3, "<alert.3@example.com>", ACCEPTED.accepted_at, "250 ok"))
    assert own.find("digest", 7) is None and own.find("alert", 3) is not None
    own.forget("alert", 3)
    own.close()

    assert not own.path.exists()


def test_the_file_is_durable_on_commit_without_wal(tmp_path: Path) -> None:
    own = Journal(tmp_path, "host-1")
    own.record(ACCEPTED)

    with sqlite3.connect(own.path) as reader:
        mode = reader.execute("PRAGMA journal_mode").fetchone()[0]
        rows = reader.execute("SELECT message_id, reply FROM accepted").fetchall()
    own.close()

    assert mode == "delete"
    assert rows == [(ACCEPTED.message_id, ACCEPTED.reply)]
    assert list(tmp_path.iterdir()) == [own.path]


def test_a_corrupt_journal_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "host-9.sqlite3").write_bytes(b"not a database, " * 512)
    own = Journal(tmp_path, "host-1")

    with pytest.raises(JournalError) as raised:
        own.find("digest", 7)

    assert str(raised.value) == (
        f"sent journal {tmp_path / 'host-9.sqlite3'}: file is not a database; no email is sent without it"
    )
    own.close()


def test_a_journal_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "journal").write_text("a file where the folder should be")

    with pytest.raises(JournalError, match=r"^sent journal .*/journal: (File exists|Not a directory)$"):
        journal_for(tmp_path / "journal")


def test_a_sent_digest_has_the_servers_reply_in_its_history_and_leaves_no_journal(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer
) -> None:
    delivery_id = a_digest(rt, ingest)

    outcome = digests.send_delivery(
        rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=SLOT
    )

    assert outcome.status == "sent" and len(sink.messages) == 1
    [claimed, sent] = digest_events(rt, delivery_id)
    assert claimed == ("claimed", "attempt 1")
    assert sent[0] == "sent" and sent[1] is not None and sent[1].startswith("250 ")
    rt.close()
    assert list((rt.settings.home / "journal").iterdir()) == []


class Crash(Exception):
    """The process dies here."""


def test_a_digest_accepted_whose_sent_write_never_came_is_marked_sent_from_the_journal_when_claimed_again(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault point: after the 250 and the journal write, the database write never happens (the
    process died, or the outage outlasted DIGEST_SENT_WRITE_RETRY). The re-claim after the lease does not
    send: one message at the sink, and the history says where the fact came from."""
    delivery_id = a_digest(rt, ingest)

    def die(*_args: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "_commit_sent", die)
        with pytest.raises(Crash):
            digests.send_delivery(
                rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=SLOT
            )
    later = SLOT + SEND_LEASE + timedelta(minutes=1)
    outcome = digests.send_delivery(
        rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=later
    )

    assert outcome.status == "sent" and len(sink.messages) == 1
    assert outcome.message_id == sink.messages[0]["Message-ID"]
    events = digest_events(rt, delivery_id)
    assert [event for event, _ in events] == ["claimed", "claimed", "sent"]
    detail = events[-1][1] or ""
    assert detail.startswith("250 ") and "; found in the journal " in detail
    # Dropped with the worker's next journal write, or when it stops.
    rt.close()
    assert list((rt.settings.home / "journal").iterdir()) == []


def test_an_alert_accepted_whose_sent_write_never_came_is_marked_sent_from_the_journal_too(
    rt: Runtime, sink: SmtpSink, mailer: Mailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    surge(rt)
    reader(rt)
    [delivery_id] = alerts.check(rt.sessions, NOW)

    def die(*_args: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "_commit_sent", die)
        with pytest.raises(Crash):
            alerts.send(
                rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
            )
    later = NOW + SEND_LEASE + timedelta(minutes=1)
    outcome = alerts.send(
        rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=later
    )

    assert outcome.status == "sent" and len(sink.messages) == 1
    events = alert_events(rt, delivery_id)
    assert [event for event, _ in events] == ["claimed", "claimed", "sent"]
    assert "; found in the journal " in (events[-1][1] or "")


def test_a_reclaimed_digest_is_not_sent_when_the_journal_cannot_be_read(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer
) -> None:
    delivery_id = a_digest(rt, ingest)
    with transaction(rt.sessions) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status="sending", claimed_at=SLOT, attempts=1)
        )
    folder = rt.settings.home / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "other-host-1.sqlite3").write_bytes(b"\0garbage" * 1024)

    with pytest.raises(JournalError, match="file is not a database; no email is sent without it"):
        digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=SLOT + SEND_LEASE + timedelta(minutes=1),
        )

    assert sink.messages == []
    with transaction(rt.sessions) as session:
        assert session.scalar(select(Delivery.status).where(Delivery.id == delivery_id)) == "sending"


def test_a_digest_is_not_sent_when_its_journal_cannot_be_created(
    rt: Runtime, ingest: Ingest, sink: SmtpSink, mailer: Mailer
) -> None:
    delivery_id = a_digest(rt, ingest)
    home = rt.settings.home
    home.mkdir(parents=True, exist_ok=True)
    (home / "journal").write_text("in the way")

    with pytest.raises(JournalError):
        digests.send_delivery(
            rt.sessions, delivery_id, mailer=mailer, composer=rt.composer, config=rt.delivery, now=SLOT
        )

    assert sink.messages == []
    journal.close_journal(home / "journal")
