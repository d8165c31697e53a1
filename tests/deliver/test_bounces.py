"""Bounces that arrive later (issue 19): a signed VERP return path on every digest, the bounce mailbox read
for RFC 3464 DSNs and RFC 5965 complaint reports (tests/data/bounces/), and what each does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Mailbox, load_settings, parse_mailbox, settings_env
from digest.db import transaction
from digest.deliver import bounces, digests, history, suppression, verp
from digest.deliver.cadence import Schedule
from digest.deliver.mail import mailer_for
from digest.deliver.mail.envelope import RETURN_PATH
from digest.deliver.subscribers import subscribe
from digest.errors import ConfigError
from digest.ingest import crawl
from digest.models import Delivery, Source, Subscriber, Subscription
from digest.records import DeliveryOutcome
from digest.runtime import Runtime
from digest.web import create_app
from tests.support import FeedServer, Route, feed_server, rss, smtp_sink
from tests.web_support import serve

DATA = Path(__file__).parent.parent / "data" / "bounces"
HOURLY = Schedule("hourly", 8, 0, "UTC")
READER = "reader@example.com"
TOKEN = "admin-token-for-tests-0123456789"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SENT_AT = at("2026-11-16T06:00:30")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


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


def publish(rt: Runtime, server: FeedServer, when: datetime) -> None:
    server.routes["/feed"] = Route(rss((f"{when.isoformat()}-1", "Python 3.14 released", "")))
    with transaction(rt.sessions) as session:
        source = Source(
            url=server.url("/feed"), name="Loopback", kind="news", next_fetch_at=when, created_at=when
        )
        session.add(source)
        session.flush()
        source_id = source.id
    outcome = crawl.refresh_and_tag(rt.sessions, rt.fetcher, rt.matchers, source_id, when, random.Random(1))
    assert outcome.status == "ok"


def follow(rt: Runtime, email: str = READER) -> None:
    with transaction(rt.sessions) as session:
        subscribe(session, email, ["Python"], HOURLY, at("2026-11-16T05:10"), confirmed=True)


@pytest.fixture
def sent(rt: Runtime, server: FeedServer) -> int:
    """One hourly digest sent to reader@example.com through the maildir; its delivery id."""
    follow(rt)
    publish(rt, server, at("2026-11-16T05:30"))
    [outcome] = send_due(rt, SENT_AT)
    assert outcome.status == "sent"
    return outcome.delivery_id


def report(rt: Runtime, name: str, delivery_id: int, recipient: str = READER) -> bytes:
    """A report of tests/data/bounces/ about ``delivery_id``."""
    address = verp.return_path(delivery_id, rt.settings.secret_key, rt.settings.bounce_domain)
    text = (DATA / name).read_text().replace("{{VERP}}", address).replace("{{RECIPIENT}}", recipient)
    return text.encode()


def bounce_box(tmp_path: Path, *messages: bytes) -> Path:
    box = tmp_path / "bounces"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for number, raw in enumerate(messages):
        (box / "new" / f"1763285462.{number}.mx").write_bytes(raw)
    return box


def read_box(rt: Runtime, box: Path) -> dict[str, object]:
    env = settings_env(rt.settings) | {"DIGEST_BOUNCE_MAILBOX": str(box)}
    done = CliRunner().invoke(app, ["bounces", "read", "--json"], env=env)
    assert done.exit_code == 0, done.output
    answer: dict[str, object] = json.loads(done.output)
    return answer


def suppressed(rt: Runtime, email: str = READER) -> str | None:
    with transaction(rt.sessions) as session:
        entry = suppression.find(session, rt.settings.secret_key, email)
    return entry.reason if entry else None


def events(rt: Runtime, delivery_id: int) -> list[tuple[str, str | None]]:
    with transaction(rt.sessions) as session:
        return [(event.event, event.detail) for event in history.view(session, delivery_id).events]


def person(rt: Runtime, email: str = READER) -> tuple[str, int]:
    with transaction(rt.sessions) as session:
        row = session.execute(
            select(Subscriber.state, Subscriber.bounces).where(Subscriber.email == email)
        ).one()
    return row.state, row.bounces


def test_each_digest_goes_out_with_a_signed_verp_return_path_and_replays_the_same_bytes(
    rt: Runtime, sent: int
) -> None:
    [file] = (Path(rt.settings.mail_url.removeprefix("maildir://")) / "new").iterdir()
    first = file.read_bytes().split(b"\n", 1)[0].decode()
    address = first.removeprefix("Return-Path: <").removesuffix(">")

    assert address == f"bounces+{sent}.{address.split('.', 1)[1].split('@')[0]}@localhost"
    assert verp.delivery_of(address, rt.settings.secret_key) == sent
    assert verp.delivery_of(address.upper(), rt.settings.secret_key) == sent
    rendered = digests.render_delivery(rt.sessions, sent, rt.composer, rt.delivery)
    assert rendered.hash_stored == rendered.email.body_hash
    assert RETURN_PATH not in rendered.message


def test_over_smtp_the_verp_address_is_the_envelope_sender_and_not_a_header(
    rt: Runtime, server: FeedServer
) -> None:
    follow(rt)
    publish(rt, server, at("2026-11-16T05:30"))
    with smtp_sink() as sink:
        mailer = mailer_for(sink.url)
        [outcome] = send_due(rt, SENT_AT, mailer)
        mailer.close()

    assert outcome.status == "sent"
    assert verp.delivery_of(sink.senders[0], rt.settings.secret_key) == outcome.delivery_id
    assert RETURN_PATH not in sink.messages[0]
    assert rt.settings.from_address in str(sink.messages[0]["From"])


@pytest.mark.parametrize(
    "forged",
    [
        "bounces+{id}.0123456789abcdef0123@localhost",
        "bounces+{other}.{signature}@localhost",
        "bounces+{id}@localhost",
    ],
)
def test_a_forged_verp_address_names_no_delivery(rt: Runtime, forged: str) -> None:
    good = verp.return_path(7, rt.settings.secret_key, "localhost")
    signature = good.split(".", 1)[1].split("@")[0]
    address = forged.format(id=7, other=8, signature=signature)
    assert verp.delivery_of(address, rt.settings.secret_key) is None
    assert verp.delivery_of(good, "another-secret-0123456789abcdefghijkl") is None


def test_a_dsn_in_the_bounce_maildir_marks_the_delivery_bounced_and_suppresses_the_address(
    rt: Runtime, sent: int, tmp_path: Path
) -> None:
    box = bounce_box(tmp_path, report(rt, "postfix-hard.eml", sent))

    answer = read_box(rt, box)

    assert (answer["read"], answer["hard"], answer["ignored"]) == (1, 1, 0)
    assert suppressed(rt) == suppression.BOUNCE
    assert person(rt)[0] == "bouncing"
    [(_event, detail)] = [entry for entry in events(rt, sent) if entry[0] == "bounced"]
    assert detail is not None
    assert detail.startswith("failed 5.1.1: smtp; 550 5.1.1")
    assert "User unknown" in detail
    assert list((box / "new").iterdir()) == []
    assert [path.name for path in (box / "cur").iterdir()] == ["1763285462.0.mx:2,S"]
    # Shown where ops look: `digest deliveries show` and the admin's delivery page.
    shown = CliRunner().invoke(app, ["deliveries", "show", str(sent)], env=settings_env(rt.settings))
    assert "bounced: failed 5.1.1" in shown.output
    admin = rt.settings.model_copy(update={"admin_token": TOKEN})
    with serve(create_app(admin, clock=lambda: SENT_AT)) as http:
        page = http.get(f"/admin/deliveries/{sent}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "bounced" in page.text
    assert "Recipient address rejected" in page.text
    # Read again (a crash before the file moved): nothing is counted twice.
    (box / "cur" / "1763285462.0.mx:2,S").rename(box / "new" / "again")
    assert read_box(rt, box)["hard"] == 0
    assert person(rt) == ("bouncing", 1)


def test_a_complaint_report_suppresses_the_address_as_a_complaint(
    rt: Runtime, sent: int, tmp_path: Path
) -> None:
    answer = read_box(rt, bounce_box(tmp_path, report(rt, "arf-complaint.eml", sent)))

    assert answer["complaints"] == 1
    assert suppressed(rt) == suppression.COMPLAINT
    assert ("complained", "complaint (abuse) via a feedback report") in events(rt, sent)


def test_a_forged_or_foreign_report_changes_nothing(rt: Runtime, sent: int, tmp_path: Path) -> None:
    real = verp.return_path(sent, rt.settings.secret_key, rt.settings.bounce_domain)
    forged = report(rt, "postfix-hard.eml", sent).replace(
        real.encode(), f"bounces+{sent}.{'0' * 20}@localhost".encode()
    )
    other_secret = load_settings(secret_key="another-secret-0123456789abcdefghijkl", home=rt.settings.home)
    foreign = report(rt, "arf-complaint.eml", sent).replace(
        real.encode(), verp.return_path(sent, other_secret.secret_key, "localhost").encode()
    )
    vacation = report(rt, "vacation.eml", sent)

    answer = read_box(rt, bounce_box(tmp_path, forged, foreign, vacation, b"\x00\xff not mail at all"))

    assert (answer["read"], answer["hard"], answer["complaints"], answer["ignored"]) == (4, 0, 0, 4)
    assert suppressed(rt) is None
    assert person(rt) == ("active", 0)
    assert [event for event, _ in events(rt, sent)] == ["claimed", "sent"]


def sent_row(rt: Runtime, email: str, window_end: datetime) -> int:
    """A sent delivery of ``email``'s subscription, written straight into the database."""
    with transaction(rt.sessions) as session:
        subscription_id = session.scalar(
            select(Subscription.id).join(Subscriber).where(Subscriber.email == email)
        )
        delivery = Delivery(
            subscription_id=subscription_id,
            window_start=window_end - timedelta(hours=1),
            window_end=window_end,
            status="sent",
            created_at=window_end,
            finished_at=window_end,
        )
        session.add(delivery)
        session.flush()
        return delivery.id


def test_soft_bounces_count_toward_three_in_a_row(rt: Runtime, tmp_path: Path) -> None:
    follow(rt)
    first, second, third = (sent_row(rt, READER, SENT_AT + timedelta(hours=n)) for n in range(3))

    read_box(rt, bounce_box(tmp_path / "1", report(rt, "postfix-delayed.eml", first)))
    read_box(rt, bounce_box(tmp_path / "2", report(rt, "postfix-failed-4xx.eml", second)))
    assert person(rt) == ("active", 2)
    assert suppressed(rt) is None
    assert events(rt, first)[0][0] == "soft-bounced"
    assert (
        events(rt, first)[0][1]
        == "delayed 4.2.2: smtp; 452 4.2.2 <reader@example.com>: Recipient address rejected: Mailbox full"
    )

    read_box(rt, bounce_box(tmp_path / "3", report(rt, "postfix-delayed.eml", third)))

    assert person(rt) == ("bouncing", 3)
    assert suppressed(rt) == suppression.BOUNCE
    env = settings_env(rt.settings) | {"DIGEST_BOUNCE_MAILBOX": str(bounce_box(tmp_path / "4", b"hello"))}
    done = CliRunner().invoke(app, ["bounces", "read"], env=env)
    assert done.output == "read 1 messages: 0 hard bounces, 0 soft, 0 complaints, 1 ignored\n"


def test_the_bounce_mailbox_setting_takes_a_maildir_or_an_imaps_url(tmp_path: Path) -> None:
    assert parse_mailbox(str(tmp_path)) == Mailbox(maildir=tmp_path)
    assert parse_mailbox(f"maildir://{tmp_path}") == Mailbox(maildir=tmp_path)
    assert parse_mailbox("imaps://bounce%40digest.example:s%3Acret@imap.example.org/INBOX") == Mailbox(
        host="imap.example.org", port=993, user="bounce@digest.example", password="s:cret", folder="INBOX"
    )
    assert parse_mailbox("imaps://u:p@imap.example.org:1993/Bounces%20In") == Mailbox(
        host="imap.example.org", port=1993, user="u", password="p", folder="Bounces In"
    )
    assert parse_mailbox("imaps://u:p@imap.example.org").folder == "INBOX"


@pytest.mark.parametrize(
    "value",
    [
        "imap://u:p@imap.example.org/INBOX",
        "imaps://imap.example.org/INBOX",
        "imaps://u:hunter2@/INBOX",
        "pop3://x",
    ],
)
def test_a_bad_bounce_mailbox_is_one_readable_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DIGEST_BOUNCE_MAILBOX", value)
    with pytest.raises(ConfigError) as raised:
        load_settings(secret_key="test-secret-key-0123456789abcdefghijkl")
    message = str(raised.value)
    assert message.startswith("DIGEST_BOUNCE_MAILBOX: ")
    assert "imaps://USER:PASSWORD@HOST" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_bounces_read_without_a_mailbox_says_so(rt: Runtime) -> None:
    done = CliRunner().invoke(app, ["bounces", "read"], env=settings_env(rt.settings))
    assert done.exit_code != 0
    assert "DIGEST_BOUNCE_MAILBOX" in str(done.exception)


def test_reports_are_read_with_the_standard_library(rt: Runtime) -> None:
    secret = rt.settings.secret_key
    hard = bounces.read_report(report(rt, "postfix-hard.eml", 41), secret, "test")
    soft = bounces.read_report(report(rt, "postfix-delayed.eml", 42), secret, "test")
    complaint = bounces.read_report(report(rt, "arf-complaint.eml", 43), secret, "test")
    assert hard is not None and (hard.kind, hard.delivery_id, hard.recipient) == ("hard", 41, READER)
    assert soft is not None and (soft.kind, soft.delivery_id) == ("soft", 42)
    assert complaint is not None and (complaint.kind, complaint.delivery_id) == ("complaint", 43)
    assert bounces.read_report(report(rt, "vacation.eml", 44), secret, "test") is None
