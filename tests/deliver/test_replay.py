"""Admins' replays (digest/replay.py, `digest replay`, `digest deliveries show`): exact, recorded, once."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import settings_env
from digest.db import transaction
from digest.deliver import digests, replay
from digest.deliver.cadence import Schedule
from digest.deliver.compose import Composer, message_id, templates_dir
from digest.deliver.mail import MaildirMailer, mailer_for
from digest.deliver.subscribers import subscribe
from digest.errors import DigestError, InvalidInputError
from digest.ingest import crawl
from digest.models import AuditEntry, Source, TemplateVersion
from digest.records import DeliveryOutcome
from digest.runtime import Runtime
from tests.support import FeedServer, Route, feed_server, rss, smtp_sink

HOURLY = Schedule("hourly", 8, 0, "UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def publish(rt: Runtime, server: FeedServer, when: datetime, *titles: str) -> None:
    """Items on a loopback feed, crawled and tagged at ``when``."""
    server.routes["/feed"] = Route(
        rss(*[(f"{when.isoformat()}-{n}", title, "") for n, title in enumerate(titles)])
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


def send_due(rt: Runtime, now: datetime, mailer: object | None = None) -> list[DeliveryOutcome]:
    return [
        digests.send_delivery(
            rt.sessions,
            delivery_id,
            mailer=mailer or rt.mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=now,
        )
        for batch in digests.dispatch_due(rt.sessions, now)
        for delivery_id in batch
    ]


def outbox(rt: Runtime) -> list[EmailMessage]:
    mailer = rt.mailer
    assert isinstance(mailer, MaildirMailer)
    found = []
    for path in sorted((mailer.path / "new").iterdir(), key=lambda path: path.stat().st_mtime_ns):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


@pytest.fixture
def sent(rt: Runtime, server: FeedServer) -> int:
    """One hourly digest of two Python items, sent to reader@example.com; its delivery id."""
    with transaction(rt.sessions) as session:
        subscribe(session, "reader@example.com", ["Python"], HOURLY, at("2026-11-16T05:10"), confirmed=True)
    publish(rt, server, at("2026-11-16T05:30"), "Python 3.14 released", "Profiling Python services")
    [outcome] = send_due(rt, at("2026-11-16T06:00:30"))
    assert outcome.status == "sent"
    return outcome.delivery_id


def cli(rt: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=settings_env(rt.settings))
    if isinstance(result.exception, DigestError):
        # ``digest.cli.main`` prints these as one line; ``app`` alone lets them through.
        return 1, str(result.exception)
    return result.exit_code, result.output


def test_a_replay_stays_byte_identical_after_the_templates_change(
    rt: Runtime, sent: int, tmp_path: Path
) -> None:
    changed = tmp_path / "templates"
    shutil.copytree(templates_dir(), changed)
    body = changed / "email" / "digest" / "body.html"
    body.write_text(
        body.read_text().replace("{% block body %}", "{% block body %}<p>A new first line.</p>", 1)
    )
    composer = Composer(changed)
    assert composer.versions["digest"] != rt.composer.versions["digest"]

    rendered = digests.render_delivery(rt.sessions, sent, composer, rt.delivery)

    assert rendered.hash_stored == rendered.email.body_hash
    assert rendered.message["Message-ID"] == message_id(sent, rt.delivery.sender)
    # Without the archived version the same replay would differ: the archive is what keeps it exact.
    with transaction(rt.sessions) as session:
        session.execute(delete(TemplateVersion))
    assert (
        digests.render_delivery(rt.sessions, sent, composer, rt.delivery).email.body_hash
        != rendered.hash_stored
    )


def test_replay_preview_reports_the_hashes_as_json(rt: Runtime, sent: int, tmp_path: Path) -> None:
    code, output = cli(rt, "replay", str(sent), "--preview", str(tmp_path / "again.eml"), "--json")

    assert code == 0, output
    row = json.loads(output)
    assert row["identical"] is True and row["hash_now"] == row["hash_stored"]
    assert b"Message-ID: <digest." in (tmp_path / "again.eml").read_bytes()


def test_a_copy_goes_to_the_admin_marked_as_a_replay_and_audited(rt: Runtime, sent: int) -> None:
    code, output = cli(rt, "replay", str(sent), "--to", "Admin@Example.org", "--json")

    assert code == 0, output
    row = json.loads(output)
    original, copy = outbox(rt)
    assert copy["To"] == "admin@example.org" and row["to"] == "admin@example.org"
    assert copy["Message-ID"] == row["message_id"] != original["Message-ID"]
    assert copy["X-Digest-Replay-Of"] == original["Message-ID"]
    assert copy["Subject"] == original["Subject"]
    with transaction(rt.sessions) as session:
        [entry] = session.scalars(select(AuditEntry)).all()
        assert (entry.action, entry.arguments) == (
            "replay.copy",
            {"delivery": sent, "to": "admin@example.org"},
        )


def test_a_resend_goes_to_the_subscriber_once_unless_forced(rt: Runtime, sent: int) -> None:
    first = cli(rt, "replay", str(sent), "--resend", "--json")
    second = cli(rt, "replay", str(sent), "--resend")
    forced = cli(rt, "replay", str(sent), "--resend", "--force", "--json")

    assert first[0] == 0 and forced[0] == 0
    assert second[0] == 1 and "resent already" in second[1] and "--force" in second[1]
    messages = outbox(rt)
    assert [m["To"] for m in messages] == ["reader@example.com"] * 3
    assert len({m["Message-ID"] for m in messages}) == 3
    assert all(m["X-Digest-Replay-Of"] == messages[0]["Message-ID"] for m in messages[1:])


def test_a_copy_to_a_hostile_address_is_refused_before_anything_is_sent(rt: Runtime, sent: int) -> None:
    with pytest.raises(InvalidInputError):
        replay.send_copy(
            rt, sent, "admin@example.org\r\nBcc: all@example.org", "test", at("2026-11-16T07:00")
        )

    assert len(outbox(rt)) == 1


def test_a_skipped_delivery_has_nothing_to_replay(rt: Runtime, server: FeedServer) -> None:
    with transaction(rt.sessions) as session:
        subscribe(
            session, "reader@example.com", ["Kubernetes"], HOURLY, at("2026-11-16T05:10"), confirmed=True
        )
    [skipped] = send_due(rt, at("2026-11-16T06:00:30"))

    code, output = cli(rt, "replay", str(skipped.delivery_id), "--resend")

    assert skipped.status == "skipped"
    assert code == 1 and "no manifest" in output


def test_bulk_resend_of_an_outage_is_idempotent_when_run_again(rt: Runtime, server: FeedServer) -> None:
    for number in range(3):
        with transaction(rt.sessions) as session:
            subscribe(
                session,
                f"reader{number}@example.com",
                ["Python"],
                HOURLY,
                at("2026-11-16T05:10"),
                confirmed=True,
            )
    publish(rt, server, at("2026-11-16T05:30"), "Python 3.14 released")
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "554 5.7.1 relay unavailable during the outage"
        relay = mailer_for(sink.url)
        failed = send_due(rt, at("2026-11-16T06:00:30"), relay)
        relay.close()
    assert [o.status for o in failed] == ["failed"] * 3
    # An interrupted first run: only one of the three went out.
    replay.resend(rt, failed[0].delivery_id, "test", at("2026-11-16T07:00"))

    code, output = cli(rt, "replay", "--status", "failed", "--since", "2026-11-16T06:00:00Z", "--json")
    again = cli(rt, "replay", "--status", "failed", "--since", "2026-11-16T06:00:00Z", "--json")

    assert code == 0, output
    assert (json.loads(output)["resent"], json.loads(output)["already_resent"]) == (2, 1)
    assert (json.loads(again[1])["resent"], json.loads(again[1])["already_resent"]) == (0, 3)
    assert sorted(str(m["To"]) for m in outbox(rt)) == [f"reader{n}@example.com" for n in range(3)]


def test_deliveries_show_gives_the_items_why_history_and_replays(rt: Runtime, sent: int) -> None:
    replay.send_copy(rt, sent, "admin@example.org", "test", at("2026-11-16T07:00"))

    code, output = cli(rt, "deliveries", "show", str(sent), "--json")

    assert code == 0, output
    row = json.loads(output)
    assert (row["subscriber"], row["cadence"], row["status"]) == ("reader@example.com", "hourly", "sent")
    assert (row["window_start"], row["window_end"]) == ("2026-11-16T05:00:00Z", "2026-11-16T06:00:00Z")
    assert {item["title"] for item in row["items"]} == {"Python 3.14 released", "Profiling Python services"}
    why = [(item["skill"], item["matched"], item["in_title"]) for item in row["items"]]
    assert why == [("Python", ["Python 3.14"], True), ("Python", ["Python"], True)], why
    assert [event["event"] for event in row["history"]] == ["claimed", "sent"]
    assert [(r["kind"], r["to"], r["status"]) for r in row["replays"]] == [
        ("copy", "admin@example.org", "sent")
    ]


def test_deliveries_show_records_the_smtp_reply_of_a_failure(rt: Runtime, server: FeedServer) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, "reader@example.com", ["Python"], HOURLY, at("2026-11-16T05:10"), confirmed=True)
    publish(rt, server, at("2026-11-16T05:30"), "Python 3.14 released")
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "550 5.1.1 no such user"
        relay = mailer_for(sink.url)
        [failed] = send_due(rt, at("2026-11-16T06:00:30"), relay)
        relay.close()

    row = json.loads(cli(rt, "deliveries", "show", str(failed.delivery_id), "--json")[1])

    assert [event["event"] for event in row["history"]] == ["claimed", "failed"]
    assert "550" in row["history"][-1]["detail"] and "no such user" in row["history"][-1]["detail"]


def test_replay_refuses_contradictory_options(rt: Runtime, sent: int, tmp_path: Path) -> None:
    both = cli(rt, "replay", str(sent), "--to", "a@example.org", "--resend")
    neither = cli(rt, "replay")
    bulk_with_id = cli(rt, "replay", str(sent), "--status", "failed", "--since", "2026-11-16T00:00:00Z")

    assert both[0] == neither[0] == bulk_with_id[0] == 1
    assert all(len(output.strip().splitlines()) == 1 for _, output in (both, neither, bulk_with_id))


def test_unknown_delivery_is_one_line(rt: Runtime) -> None:
    code, output = cli(rt, "deliveries", "show", "999")

    assert code == 1 and "no delivery with id 999" in output
