"""Ops at run time: cadences in the database, bulk cadence changes, pausing sending. Clock pinned."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import app
from digest.cli.bootstrap import upgrade_all
from digest.config import Settings
from digest.db import transaction
from digest.deliver import digests
from digest.deliver.cadence import Schedule
from digest.deliver.mail import MaildirMailer
from digest.deliver.subscribers import set_cadence, subscribe
from digest.deliver.unsubscribe import unsubscribe
from digest.errors import InvalidInputError
from digest.ingest import crawl
from digest.models import AuditEntry, Setting, Source, Subscription
from digest.ops import audit, schedules, sending
from digest.records import DeliveryOutcome
from digest.runtime import Runtime
from digest.web import create_app
from tests.support import FeedServer, Route, feed_server, rss
from tests.web_support import serve

ACTOR = "cli:ops"
HOURLY = Schedule("hourly", 8, 0, "UTC")
DAILY = Schedule("daily", 8, 0, "UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- cadences ------------------------------------------------------------------------------------------


def cadence(rt: Runtime, name: str) -> schedules.CadenceInfo:
    with transaction(rt.sessions) as session:
        return next(info for info in schedules.list_schedules(session) if info.name == name)


def set_value(rt: Runtime, name: str, value: str, now: datetime) -> schedules.CadenceInfo:
    with transaction(rt.sessions) as session:
        return schedules.set_schedule(session, name, value, ACTOR, now)


def test_every_schedule_and_setting_is_listed_with_its_built_in_default_before_any_change(
    rt: Runtime,
) -> None:
    with transaction(rt.sessions) as session:
        listed = {
            info.name: (info.value, info.kind, info.enabled) for info in schedules.list_schedules(session)
        }

    assert listed == {
        "alert-check": ("5m", "schedule", True),
        "crawl-tick": ("1m", "schedule", True),
        "dispatch-tick": ("1m", "schedule", True),
        "figures-refresh": ("10m", "schedule", True),
        "retention-prune": ("1d", "schedule", True),
        "bounces-read": ("5m", "schedule", True),
        "default-hour": ("8", "hour", True),
        "default-weekday": ("monday", "weekday", True),
        "feed-interval.blog": ("1h", "interval", True),
        "feed-interval.news": ("15m", "interval", True),
        "feed-interval.paper": ("6h", "interval", True),
    }


@pytest.mark.parametrize(
    ("name", "value", "shown", "beat"),
    [
        ("crawl-tick", "30s", "30s", (30, None)),
        ("crawl-tick", "1d", "1d", (86400, None)),
        ("dispatch-tick", "*/5  *  * * mon-fri", "*/5 * * * mon-fri", (None, "*/5 * * * mon-fri")),
        ("dispatch-tick", "90s", "90s", (90, None)),
    ],
)
def test_a_schedule_takes_a_duration_or_a_cron_expression_and_beat_reads_it(
    rt: Runtime, now: datetime, name: str, value: str, shown: str, beat: tuple[int | None, str | None]
) -> None:
    info = set_value(rt, name, value, now)

    assert (info.value, info.updated_at) == (shown, now)
    with transaction(rt.sessions) as session:
        entries = {entry.name: (entry.every_seconds, entry.cron) for entry in schedules.beat_entries(session)}
    assert entries[name] == beat


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("crawl-tick", "5s", "duration from 10s to 1d"),
        ("crawl-tick", "2d", "5-field cron expression"),
        ("crawl-tick", "soon", "on or off"),
        ("dispatch-tick", "0 8 * *", "5-field cron expression"),
        ("dispatch-tick", "61 * * * *", "not a cron expression"),
        ("feed-interval.news", "30s", "from 1m to 1d"),
        ("feed-interval.paper", "2d", "from 1m to 1d"),
        ("feed-interval.blog", "hourly", "use forms like 90s, 15m, 1h, 2d"),
        ("default-hour", "24", "0 to 23"),
        ("default-hour", "8am", "0 to 23"),
        ("default-weekday", "someday", "monday, tuesday"),
        ("nightly-tick", "1h", "use one of alert-check, bounces-read, crawl-tick"),
    ],
)
def test_a_value_out_of_bounds_or_of_the_wrong_form_is_refused_naming_the_accepted_forms(
    rt: Runtime, now: datetime, name: str, value: str, says: str
) -> None:
    with pytest.raises(InvalidInputError, match=says) as refused:
        set_value(rt, name, value, now)

    assert "\n" not in str(refused.value)
    with transaction(rt.sessions) as session:
        assert audit.entries(session, action="cadence.set") == []


def test_each_change_is_audited_with_the_previous_value_in_the_same_transaction(
    rt: Runtime, now: datetime
) -> None:
    set_value(rt, "feed-interval.news", "5m", now)
    set_value(rt, "default-weekday", "fri", now + timedelta(minutes=1))
    set_value(rt, "dispatch-tick", "off", now + timedelta(minutes=2))

    with transaction(rt.sessions) as session:
        entries = [
            (entry.actor, entry.arguments, entry.result)
            for entry in reversed(audit.entries(session, action="cadence.set"))
        ]
    assert entries == [
        (ACTOR, {"name": "feed-interval.news", "value": "5m", "previous": "15m"}, "5m"),
        (ACTOR, {"name": "default-weekday", "value": "fri", "previous": "monday"}, "friday"),
        (ACTOR, {"name": "dispatch-tick", "value": "off", "previous": "1m"}, "1m (off)"),
    ]
    assert cadence(rt, "dispatch-tick").enabled is False


def test_defaults_are_seeded_once_and_a_changed_value_survives_the_next_upgrade(
    rt: Runtime, now: datetime
) -> None:
    upgrade_all(rt, now)
    set_value(rt, "crawl-tick", "5m", now)
    set_value(rt, "default-hour", "6", now)

    later = now + timedelta(days=1)
    upgrade_all(rt, later)

    with transaction(rt.sessions) as session:
        assert schedules.ensure_defaults(session, later) == []
        stored = {row.key: row.value for row in session.scalars(select(Setting))}
    assert (cadence(rt, "crawl-tick").value, cadence(rt, "default-hour").value) == ("5m", "6")
    assert cadence(rt, "alert-check").updated_at == now
    assert stored["feed-interval.paper"] == {"seconds": 6 * 3600}


def test_new_subscriptions_default_hour_and_weekday_come_from_the_settings(
    rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        assert schedules.subscription_defaults(session) == (8, 0)
    set_value(rt, "default-hour", "17", now)
    set_value(rt, "default-weekday", "Saturday", now)

    with transaction(rt.sessions) as session:
        assert schedules.subscription_defaults(session) == (17, 5)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        yield running


def test_a_feed_kind_s_interval_set_at_run_time_decides_the_next_fetch(
    rt: Runtime, server: FeedServer, now: datetime
) -> None:
    server.routes["/news"] = Route(rss(("n1", "Python news", "")))
    server.routes["/blog"] = Route(rss(("b1", "Python blog", "")))
    with transaction(rt.sessions) as session:
        for path, kind in (("/news", "news"), ("/blog", "blog")):
            session.add(Source(url=server.url(path), name=path, kind=kind, next_fetch_at=now, created_at=now))
    set_value(rt, "feed-interval.news", "2h", now)

    for source_id in crawl.claim_due_sources(rt.sessions, now):
        crawl.refresh_source(rt.sessions, rt.fetcher, source_id, now, random.Random(1))

    with transaction(rt.sessions) as session:
        waits = {
            kind: (next_fetch - now).total_seconds()
            for kind, next_fetch in session.execute(select(Source.kind, Source.next_fetch_at)).tuples()
        }
    # Each within the ±10 % jitter of its kind's interval: news as set now, blog the built-in hour.
    assert 2 * 3600 * 0.9 <= waits["news"] <= 2 * 3600 * 1.1
    assert 3600 * 0.9 <= waits["blog"] <= 3600 * 1.1


# -- bulk cadence changes and pausing: digests end to end ----------------------------------------------


class Ingest:
    """Publishes items on the loopback feed server and crawls and tags them at a given time."""

    def __init__(self, rt: Runtime, server: FeedServer) -> None:
        self.rt, self.server, self.count = rt, server, 0

    def __call__(self, when: datetime, *titles: str) -> None:
        entries = []
        for title in titles:
            self.count += 1
            entries.append((f"item-{self.count}", title, ""))
        self.server.routes["/feed"] = Route(rss(*entries, published=None))
        with transaction(self.rt.sessions) as session:
            source = session.scalars(select(Source).where(Source.url == self.server.url("/feed"))).first()
            if source is None:
                source = Source(
                    url=self.server.url("/feed"),
                    name="feed",
                    kind="news",
                    next_fetch_at=when,
                    created_at=when,
                )
                session.add(source)
                session.flush()
            source_id = source.id
        outcome = crawl.refresh_and_tag(
            self.rt.sessions, self.rt.fetcher, self.rt.matchers, source_id, when, random.Random(1)
        )
        assert outcome.status == "ok", outcome.error


@pytest.fixture
def ingest(rt: Runtime, server: FeedServer) -> Ingest:
    return Ingest(rt, server)


def follow(rt: Runtime, email: str, schedule: Schedule, when: datetime, *skills: str) -> int:
    with transaction(rt.sessions) as session:
        return subscribe(session, email, skills or ("Python",), schedule, when, confirmed=True).id


def send_all(rt: Runtime, now: datetime) -> list[DeliveryOutcome]:
    """Dispatch at ``now`` and send what it opened, as the worker would."""
    opened = [delivery_id for batch in digests.dispatch_due(rt.sessions, now) for delivery_id in batch]
    return [
        digests.send_delivery(
            rt.sessions, delivery_id, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
        )
        for delivery_id in opened
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


def received(rt: Runtime, address: str) -> list[tuple[str, str]]:
    """(subject, text body) of every digest ``address`` got, in order."""
    found = []
    for message in outbox(rt):
        if str(message["To"]) == address:
            body = message.get_body(("plain",))
            assert body is not None
            found.append((str(message["Subject"]), body.get_content()))
    return found


def bulk(rt: Runtime, now: datetime, *, dry_run: bool = False) -> tuple[int, int]:
    with transaction(rt.sessions) as session:
        result = set_cadence(session, "Python", "hourly", "daily", now, dry_run=dry_run)
    return result.matched, result.changed


def test_an_item_ingested_before_a_bulk_cadence_change_arrives_exactly_once_after_it(
    rt: Runtime, ingest: Ingest
) -> None:
    follow(rt, "reader@example.com", HOURLY, at("2026-11-16T08:30"))
    ingest(at("2026-11-16T09:10"), "Python 3.14 beta")
    assert [o.items for o in send_all(rt, at("2026-11-16T10:00:30"))] == [1]
    ingest(at("2026-11-16T10:20"), "Python packaging news")

    assert bulk(rt, at("2026-11-16T10:30")) == (1, 1)
    assert send_all(rt, at("2026-11-16T11:00:30")) == []
    daily = send_all(rt, at("2026-11-17T08:00:30"))
    later = send_all(rt, at("2026-11-18T08:00:30"))

    assert [(o.status, o.items) for o in daily] == [("sent", 1)]
    assert [o.status for o in later] in ([], ["skipped"])
    got = received(rt, "reader@example.com")
    # The heading names the cadence; the subject leads with a headline (issue 17).
    hourly = [body for _subject, body in got if body.startswith("Your hourly digest")]
    daily_bodies = [body for _subject, body in got if body.startswith("Your daily digest")]
    assert len(got) == 2
    assert [body.count("Python 3.14 beta") for body in hourly + daily_bodies] == [1, 0]
    assert [body.count("Python packaging news") for body in hourly + daily_bodies] == [0, 1]


def test_a_bulk_change_merges_into_the_subscriber_s_existing_subscription_and_loses_nothing(
    rt: Runtime, ingest: Ingest
) -> None:
    hourly = follow(rt, "both@example.com", HOURLY, at("2026-11-16T06:30"), "Python")
    daily = follow(rt, "both@example.com", DAILY, at("2026-11-16T06:30"), "Kubernetes")
    send_all(rt, at("2026-11-16T08:00:30"))
    ingest(at("2026-11-16T08:10"), "Python and Kubernetes together")

    assert bulk(rt, at("2026-11-16T08:20")) == (1, 1)
    send_all(rt, at("2026-11-17T08:00:30"))

    with transaction(rt.sessions) as session:
        states = dict(session.execute(select(Subscription.id, Subscription.state)).tuples().all())
    assert states == {hourly: "unsubscribed", daily: "active"}
    bodies = [body for _subject, body in received(rt, "both@example.com")]
    assert sum(body.count("Python and Kubernetes together") for body in bodies) == 1


def test_a_dry_run_counts_what_would_change_and_changes_nothing(rt: Runtime, now: datetime) -> None:
    follow(rt, "one@example.com", HOURLY, now)
    follow(rt, "two@example.com", HOURLY, now, "Python", "Go")
    follow(rt, "other@example.com", HOURLY, now, "Go")
    follow(rt, "daily@example.com", DAILY, now)

    assert bulk(rt, now, dry_run=True) == (2, 2)

    with transaction(rt.sessions) as session:
        cadences = sorted(session.scalars(select(Subscription.cadence)))
        assert audit.entries(session) == []
    assert cadences == ["daily", "hourly", "hourly", "hourly"]


def test_pending_and_unsubscribed_subscriptions_match_but_are_left_alone(rt: Runtime, now: datetime) -> None:
    stopped = follow(rt, "gone@example.com", HOURLY, now)
    with transaction(rt.sessions) as session:
        unsubscribe(session, stopped)
        subscribe(session, "unconfirmed@example.com", ["Python"], HOURLY, now, confirmed=False)
    follow(rt, "live@example.com", HOURLY, now)

    assert bulk(rt, now) == (3, 1)

    with transaction(rt.sessions) as session:
        cadences = dict(session.execute(select(Subscription.state, Subscription.cadence)).tuples().all())
    assert cadences == {"unsubscribed": "hourly", "pending": "hourly", "active": "daily"}


def test_the_same_cadence_on_both_sides_is_refused(rt: Runtime, now: datetime) -> None:
    with transaction(rt.sessions) as session, pytest.raises(InvalidInputError, match="both hourly"):
        set_cadence(session, "Python", "hourly", "hourly", now, dry_run=False)


def pause(rt: Runtime, paused: bool, now: datetime) -> sending.SendingState:
    with transaction(rt.sessions) as session:
        return sending.set_paused(session, paused=paused, actor=ACTOR, now=now)


def test_while_paused_due_digests_wait_and_on_resume_each_subscriber_gets_one_covering_the_pause(
    rt: Runtime, ingest: Ingest
) -> None:
    follow(rt, "a@example.com", HOURLY, at("2026-11-16T08:30"))
    follow(rt, "b@example.com", HOURLY, at("2026-11-16T08:30"), "Python", "Go")
    assert len(send_all(rt, at("2026-11-16T10:00:30"))) == 2
    pause(rt, True, at("2026-11-16T10:05"))

    for hour in (10, 11, 12):
        ingest(at(f"2026-11-16T{hour}:30"), f"Python at {hour}:30")
        assert send_all(rt, at(f"2026-11-16T{hour + 1}:00:30")) == []
    pause(rt, False, at("2026-11-16T13:10"))
    resumed = send_all(rt, at("2026-11-16T13:10:30"))
    after = send_all(rt, at("2026-11-16T14:00:30"))

    assert [(o.status, o.items) for o in resumed] == [("sent", 3), ("sent", 3)]
    assert [o.status for o in after] == ["skipped", "skipped"]
    for address in ("a@example.com", "b@example.com"):
        [(_subject, body)] = received(rt, address)
        assert all(body.count(f"Python at {hour}:30") == 1 for hour in (10, 11, 12))


def test_pause_and_resume_are_audited_and_asking_twice_changes_nothing(rt: Runtime, now: datetime) -> None:
    first = pause(rt, True, now)
    second = pause(rt, True, now + timedelta(minutes=1))
    resumed = pause(rt, False, now + timedelta(minutes=2))

    assert (first.paused, first.changed, first.updated_at) == (True, True, now)
    assert (second.paused, second.changed, second.updated_at) == (True, False, now)
    assert (resumed.paused, resumed.changed) == (False, True)
    with transaction(rt.sessions) as session:
        entries = session.execute(select(AuditEntry.action, AuditEntry.result).order_by(AuditEntry.id)).all()
        assert sending.paused(session) is False
    assert [tuple(entry) for entry in entries] == [
        ("sending.pause", "changed"),
        ("sending.pause", "already paused"),
        ("sending.resume", "changed"),
    ]


# -- the commands --------------------------------------------------------------------------------------


@pytest.fixture
def home(settings: Settings, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DIGEST_HOME and database of ``rt``, for commands run in this process."""
    monkeypatch.setenv("DIGEST_HOME", str(settings.home))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    return settings.home


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cadence_show_and_set_speak_json_for_scripts(home: Path) -> None:
    changed = json.loads(run("cadence", "set", "crawl-tick", "30s", "--json"))
    shown = {row["name"]: row for row in json.loads(run("cadence", "show", "--json"))}

    assert changed["name"] == "crawl-tick" and changed["value"] == "30s"
    assert shown["crawl-tick"]["value"] == "30s" and shown["crawl-tick"]["kind"] == "schedule"
    assert shown["crawl-tick"]["updated_at"] is not None
    assert set(shown["feed-interval.news"]) == {"name", "value", "kind", "enabled", "updated_at"}


def test_set_cadence_and_sending_speak_json_for_scripts(home: Path, rt: Runtime, now: datetime) -> None:
    follow(rt, "reader@example.com", HOURLY, now)

    dry = json.loads(
        run(
            "subscriptions",
            "set-cadence",
            "--skill",
            "python",
            "--from",
            "hourly",
            "--to",
            "daily",
            "--dry-run",
            "--json",
        )
    )
    done = json.loads(
        run(
            "subscriptions", "set-cadence", "--skill", "python", "--from", "hourly", "--to", "daily", "--json"
        )
    )
    paused = json.loads(run("sending", "pause", "--json"))
    status = json.loads(run("sending", "status", "--json"))
    resumed = json.loads(run("sending", "resume", "--json"))

    assert dry == {"matched": 1, "changed": 1, "dry_run": True}
    assert done == {"matched": 1, "changed": 1, "dry_run": False}
    assert (paused["paused"], paused["changed"], status["paused"], resumed["paused"]) == (
        True,
        True,
        True,
        False,
    )
    with transaction(rt.sessions) as session:
        actions = [entry.action for entry in reversed(audit.entries(session))]
    assert actions == ["subscriptions.set-cadence", "sending.pause", "sending.resume"]


def test_a_refused_value_is_one_line_naming_the_accepted_forms(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {
        "DIGEST_HOME": str(tmp_path)
    }
    command = [sys.executable, "-m", "digest.cli"]
    subprocess.run([*command, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)

    done = subprocess.run(
        [*command, "cadence", "set", "crawl-tick", "every now and then"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "5-field cron expression" in line and "30s" in line and "Traceback" not in done.stderr


def test_new_subscriptions_take_the_default_hour_and_weekday_ops_set_at_run_time(
    home: Path, rt: Runtime, now: datetime
) -> None:
    run("cadence", "set", "default-hour", "7")
    run("cadence", "set", "default-weekday", "thu")

    run("subscribe", "cli@example.com", "--skill", "Python", "--cadence", "weekly", "--confirmed")
    with serve(create_app(rt.settings, clock=lambda: now)) as client:
        form = client.get("/subscribe?skill=python&cadence=weekly").text
        accepted = client.post("/api/subscriptions", json={"email": "api@example.com", "skills": ["Python"]})
    own = run("subscribe", "own@example.com", "--skill", "Python", "--hour", "9", "--confirmed", "--json")

    with transaction(rt.sessions) as session:
        [row] = session.scalars(select(Subscription).where(Subscription.state == "active").limit(1)).all()
        assert (row.hour, row.weekday) == (7, 3)
    assert '<option value="7" selected>' in form and '<option value="3" selected>' in form
    assert accepted.status_code == 202
    assert json.loads(own)["hour"] == 9


def test_one_feeds_interval_is_set_at_run_time_and_brings_its_next_fetch_forward(
    rt: Runtime, now: datetime
) -> None:
    with transaction(rt.sessions) as session:
        source = Source(
            url="https://feeds.example/a",
            name="A",
            kind="blog",
            next_fetch_at=now + timedelta(hours=1),
            created_at=now,
        )
        session.add(source)
        session.flush()
        source_id = source.id
        info = schedules.set_schedule(session, f"feed.{source_id}", "5m", "test", now)
    with transaction(rt.sessions) as session:
        stored = session.get(Source, source_id)
        assert stored is not None
        assert (stored.interval_seconds, stored.next_fetch_at) == (300, now + timedelta(minutes=5))
        back = schedules.set_schedule(session, f"feed.{source_id}", "default", "test", now)
        with pytest.raises(InvalidInputError, match="from 1m to 1d"):
            schedules.set_schedule(session, f"feed.{source_id}", "10s", "test", now)
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "cadence.set")).all()

    assert (info.value, info.kind, back.value) == ("5m", "feed", "default")
    assert [entry.arguments["previous"] for entry in entries] == ["default", "5m"]
