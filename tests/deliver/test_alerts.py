"""Trend alerts (digest/alerts.py, `digest alerts`): thresholds at their edges, once a day, replayable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from digest.cli import app
from digest.config import settings_env
from digest.db import transaction
from digest.deliver import alerts, suppression
from digest.deliver.cadence import Schedule
from digest.deliver.mail import MaildirMailer, mailer_for
from digest.deliver.subscribers import subscribe
from digest.errors import DigestError
from digest.ingest.skills import resolve_skill
from digest.models import Alert, AlertDelivery, Item, Skill, Source, Subscriber, Tag
from digest.records import AlertOutcome
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.web import create_app
from tests.support import smtp_sink
from tests.web_support import csrf, serve

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def trend(recent: int, baseline: float) -> alerts.Trend:
    change = (recent - baseline) / baseline * 100 if baseline else None
    return alerts.Trend("s", "Python", "python", "24h", recent, baseline, change, (), NOW, NOW)


@pytest.mark.parametrize(
    ("recent", "baseline", "threshold", "min_count", "expected"),
    [
        (15, 10.0, 50, 10, True),  # exactly +50 %
        (14, 10.0, 50, 10, False),  # +40 %
        (5, 10.0, 50, 10, True),  # exactly -50 %: falls count too
        (6, 10.0, 50, 10, False),  # -40 %
        (9, 4.0, 50, 10, False),  # +125 % but neither span reaches 10 mentions
        (10, 4.0, 50, 10, True),  # the recent span reaches the minimum
        (10, 0.0, 50, 10, True),  # nothing before, the minimum now: new
        (9, 0.0, 50, 10, False),  # nothing before, under the minimum
        (0, 0.0, 50, 1, False),
    ],
)
def test_an_alert_fires_at_its_threshold_and_minimum_and_not_below(
    recent: int, baseline: float, threshold: int, min_count: int, expected: bool
) -> None:
    assert alerts.fires(trend(recent, baseline), threshold, min_count) is expected


def test_a_trend_says_its_change_in_words() -> None:
    assert trend(15, 10.0).words == "up 50% vs the prior 4 weeks"
    assert trend(7, 10.0).words == "down 30% vs the prior 4 weeks"
    assert trend(10, 10.0).words == "flat vs the prior 4 weeks"
    assert trend(3, 0.0).words.startswith("new")


def mention(
    rt: Runtime, skill: str, when: datetime, title: str = "Python news", published: datetime | None = None
) -> None:
    """An item tagged with ``skill`` and ingested at ``when``, published ``published`` (default: ``when``)."""
    with transaction(rt.sessions) as session:
        source = session.scalars(select(Source)).first()
        if source is None:
            source = Source(
                url="https://news.example/feed", name="News", kind="news", next_fetch_at=NOW, created_at=NOW
            )
            session.add(source)
            session.flush()
        number = len(session.scalars(select(Item.id)).all()) + 1
        item = Item(
            source_id=source.id,
            entry_key=f"e{number}",
            story_key=f"s{number}",
            url=f"https://news.example/{number}",
            title=f"{title} {number}",
            summary="",
            published_at=published or when,
            ingested_at=when,
            updated_at=when,
            content_hash=f"{number}",
        )
        session.add(item)
        session.flush()
        skill_id = resolve_skill(session, skill).id
        session.add(
            Tag(
                item_id=item.id,
                skill_id=skill_id,
                ingested_at=when,
                matched=[skill],
                count=1,
                in_title=True,
                score=0.375,
            )
        )


def reader(
    rt: Runtime, email: str = "reader@example.com", period: str = "24h", threshold: int = 50, minimum: int = 5
) -> int:
    with transaction(rt.sessions) as session:
        subscribe(
            session,
            email,
            ["Python"],
            Schedule("daily", 8, 0, "UTC"),
            NOW - timedelta(days=40),
            confirmed=True,
        )
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        return alerts.add(
            session, subscriber.id, resolve_skill(session, "Python"), period, threshold, minimum, NOW
        ).id


def outbox(rt: Runtime) -> list[EmailMessage]:
    mailer = rt.mailer
    assert isinstance(mailer, MaildirMailer)
    found = []
    for path in sorted((mailer.path / "new").iterdir()):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def surge(rt: Runtime) -> None:
    """Python: 2 mentions a day for 4 weeks, then 8 in the last 24 hours (+300 %)."""
    for day in range(1, 29):
        for hour in (3, 15):
            mention(rt, "Python", NOW - timedelta(days=day, hours=hour))
    for hour in range(8):
        mention(rt, "Python", NOW - timedelta(hours=hour + 1), title="Python surge")


def send_all(rt: Runtime, now: datetime) -> list[AlertOutcome]:
    return [
        alerts.send(
            rt.sessions, delivery, mailer=rt.mailer, composer=rt.composer, config=rt.delivery, now=now
        )
        for delivery in alerts.check(rt.sessions, now)
    ]


def test_the_trend_counts_the_recent_span_against_four_weeks_before(rt: Runtime) -> None:
    surge(rt)
    mention(rt, "Python", NOW - timedelta(days=30))  # older than the baseline: not counted
    mention(rt, "Python", NOW)  # at the end: the next span's

    with transaction(rt.sessions) as session:
        measured = alerts.measure(session, resolve_skill(session, "Python"), "24h", NOW)

    assert (measured.recent, measured.baseline) == (8, 2.0)
    assert measured.words == "up 300% vs the prior 4 weeks"
    assert len(measured.bars) == 29 and measured.bars[-1] == 8 and sum(measured.bars) == 8 + 2 * 28


def test_an_alert_that_fires_is_mailed_once_a_day_with_figures_chart_and_items(rt: Runtime) -> None:
    surge(rt)
    reader(rt)

    first = send_all(rt, NOW)
    again = send_all(rt, NOW + timedelta(hours=3))
    tomorrow = send_all(rt, NOW + timedelta(days=1, minutes=5))

    assert [o.status for o in first] == ["sent"]
    assert again == []
    assert tomorrow == []  # by then the surge is in the past 24 hours no more
    [message] = outbox(rt)
    assert message["Subject"] == "Python: up 300% vs the prior 4 weeks · 8 mentions in 24 hours"
    assert message["Message-ID"] == first[0].message_id
    assert "/alerts/off/" in message["List-Unsubscribe"] and message["List-Unsubscribe-Post"]
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    assert "Python surge" in html.get_content() and "Python surge" in text.get_content()
    assert 'aria-label="Mentions per day' in html.get_content()


def test_an_alert_is_replayed_byte_identically(rt: Runtime, tmp_path: Path) -> None:
    surge(rt)
    reader(rt)
    [sent] = send_all(rt, NOW)

    result = CliRunner().invoke(
        app,
        ["alerts", "replay", str(sent.delivery_id), "--preview", str(tmp_path / "a.html"), "--json"],
        env=settings_env(rt.settings),
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["identical"] is True


def test_old_posts_found_today_are_no_mentions_of_today_and_raise_no_alert(rt: Runtime) -> None:
    for day in range(0, 29):
        mention(rt, "Python", NOW - timedelta(days=day, hours=2))
    # Issue 16: a feed's backlog stored in the last hour, published in 2019.
    for n in range(10):
        mention(
            rt, "Python", NOW - timedelta(minutes=n + 1), "Python in 2019", datetime(2019, 5, 1, tzinfo=UTC)
        )
    reader(rt, minimum=1)

    with transaction(rt.sessions) as session:
        measured = alerts.measure(session, resolve_skill(session, "Python"), "24h", NOW)

    assert (measured.recent, measured.baseline) == (1, 1.0)
    assert measured.bars[-1] == 1 and sum(measured.bars) == 29
    assert send_all(rt, NOW) == []


def test_an_alert_shows_the_items_published_in_its_span_not_those_only_stored_in_it(rt: Runtime) -> None:
    surge(rt)
    mention(rt, "Python", NOW - timedelta(minutes=1), "Python in 2019", datetime(2019, 5, 1, tzinfo=UTC))
    reader(rt)

    [sent] = send_all(rt, NOW)

    assert sent.status == "sent"
    [message] = outbox(rt)
    text = message.get_body(("plain",))
    assert text is not None
    assert "Python surge" in text.get_content() and "Python in 2019" not in text.get_content()


def test_a_steady_skill_alerts_nobody(rt: Runtime) -> None:
    for day in range(0, 29):
        mention(rt, "Python", NOW - timedelta(days=day, hours=2))
    reader(rt, minimum=1)

    assert send_all(rt, NOW) == []


def test_a_bouncing_reader_gets_no_alert(rt: Runtime) -> None:
    surge(rt)
    reader(rt, "steady@example.com")
    reader(rt, "gone@example.com", threshold=10)
    with transaction(rt.sessions) as session:
        gone = session.scalars(select(Subscriber).where(Subscriber.email == "gone@example.com")).one()
        gone.state = "bouncing"

    sent = send_all(rt, NOW)

    assert [o.status for o in sent] == ["sent"]
    assert [str(m["To"]) for m in outbox(rt)] == ["steady@example.com"]


def test_a_suppressed_reader_gets_no_alert_and_the_skip_says_why(rt: Runtime) -> None:
    surge(rt)
    reader(rt, "steady@example.com")
    reader(rt, "complained@example.com", threshold=10)
    with transaction(rt.sessions) as session:
        suppression.suppress(
            session, rt.settings.secret_key, "complained@example.com", "complaint", "test", NOW
        )

    sent = send_all(rt, NOW)

    assert sorted((o.status, o.error) for o in sent) == [
        ("sent", None),
        ("skipped", "address suppressed (complained on 2026-11-20)"),
    ]
    assert [str(m["To"]) for m in outbox(rt)] == ["steady@example.com"]


def test_a_permanent_refusal_fails_the_alert_and_a_temporary_one_retries_it(rt: Runtime) -> None:
    surge(rt)
    reader(rt)
    with smtp_sink() as sink:
        sink.refuse = lambda _rcpt: "451 4.3.0 busy"
        mailer = mailer_for(sink.url)
        [delivery] = alerts.check(rt.sessions, NOW)
        with pytest.raises(DigestError):
            alerts.send(
                rt.sessions, delivery, mailer=mailer, composer=rt.composer, config=rt.delivery, now=NOW
            )
        sink.refuse = lambda _rcpt: None
        # The task retries it; the next check leaves it alone while it waits out the back-off.
        assert alerts.check(rt.sessions, NOW + timedelta(minutes=1)) == []
        retried = alerts.send(
            rt.sessions,
            delivery,
            mailer=mailer,
            composer=rt.composer,
            config=rt.delivery,
            now=NOW + timedelta(minutes=1),
        )
        mailer.close()

    assert retried.status == "sent"
    assert len(sink.messages) == 1
    with transaction(rt.sessions) as session:
        assert session.scalars(select(AlertDelivery.status)).all() == ["sent"]


def test_alerts_are_managed_from_the_command_line(rt: Runtime) -> None:
    surge(rt)
    with transaction(rt.sessions) as session:
        subscribe(
            session, "reader@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), NOW, confirmed=True
        )
    env = settings_env(rt.settings)
    runner = CliRunner()

    added = runner.invoke(
        app,
        ["alerts", "add", "reader@example.com", "python", "--period", "7d", "--threshold", "25", "--json"],
        env=env,
    )
    listed = runner.invoke(app, ["alerts", "list", "--json"], env=env)
    bad = runner.invoke(app, ["alerts", "add", "reader@example.com", "python", "--period", "1y"], env=env)
    removed = runner.invoke(app, ["alerts", "remove", str(json.loads(added.output)["id"])], env=env)
    after = runner.invoke(app, ["alerts", "list", "--json"], env=env)

    assert added.exit_code == 0, added.output
    assert [(a["skill"], a["period"], a["threshold"], a["state"]) for a in json.loads(listed.output)] == [
        ("Python", "7d", 25, "active")
    ]
    assert isinstance(bad.exception, DigestError) and "24h or 7d" in str(bad.exception)
    assert removed.exit_code == 0
    assert [a["state"] for a in json.loads(after.output)] == ["off"]
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Skill.name).where(Skill.slug == "python")).one() == "Python"


@pytest.fixture
def client(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt.settings, clock=lambda: NOW)) as http:
        yield http


def manage_token(rt: Runtime) -> str:
    with transaction(rt.sessions) as session:
        info = subscribe(
            session, "reader@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), NOW, confirmed=True
        )
    return make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})


def test_a_subscriber_adds_and_removes_an_alert_on_the_manage_page(client: httpx.Client, rt: Runtime) -> None:
    token = manage_token(rt)
    page = client.get(f"/manage/{token}")
    fields = {
        "csrf": csrf(page.text),
        "action": "alert_add",
        "skill": "python",
        "period": "7d",
        "threshold": "30",
        "min_count": "5",
    }

    added = client.post(f"/manage/{token}/alerts", data=fields, follow_redirects=True)
    forged = client.post(f"/manage/{token}/alerts", data=fields | {"csrf": "forged"})

    assert added.status_code == 200 and "Python: last 7 days, ±30%" in added.text
    assert forged.status_code == 400
    [alert] = json.loads(client.get(f"/api/manage/{token}/alerts").text)
    off = client.post(
        f"/manage/{token}/alerts",
        data={"csrf": csrf(added.text), "action": "alert_off", "alert": str(alert["id"])},
        follow_redirects=True,
    )
    assert off.status_code == 200 and "±30%" not in off.text


def test_the_api_adds_lists_and_turns_off_alerts_of_its_own_subscriber_only(
    client: httpx.Client, rt: Runtime
) -> None:
    token = manage_token(rt)
    with transaction(rt.sessions) as session:
        other = subscribe(
            session, "other@example.com", ["Python"], Schedule("daily", 8, 0, "UTC"), NOW, confirmed=True
        )
    other_token = make_token(rt.settings.secret_key, MANAGE, {"u": other.subscriber_id})

    created = client.post(
        f"/api/manage/{token}/alerts", json={"skill": "Python", "period": "24h", "threshold": 40}
    )
    unknown = client.post(f"/api/manage/{token}/alerts", json={"skill": "no such skill"})
    wrong_period = client.post(f"/api/manage/{token}/alerts", json={"skill": "Python", "period": "1y"})
    foreign = client.delete(f"/api/manage/{other_token}/alerts/{created.json()['id']}")
    mine = client.delete(f"/api/manage/{token}/alerts/{created.json()['id']}")

    assert created.status_code == 201 and created.json()["threshold"] == 40
    assert unknown.status_code == 404 and wrong_period.status_code == 422
    assert foreign.status_code == 404
    assert mine.status_code == 200 and mine.json()["state"] == "off"
    assert client.get(f"/api/manage/{token}/alerts").json() == []


def test_the_one_click_link_of_an_alert_email_turns_it_off(client: httpx.Client, rt: Runtime) -> None:
    surge(rt)
    reader(rt)
    send_all(rt, NOW)
    [message] = outbox(rt)
    link = message["List-Unsubscribe"].split(",")[0].strip("<> ")
    path = link.removeprefix(rt.settings.base_url)

    shown = client.get(path)
    clicked = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    tampered = client.post(path[:-3] + "xyz")

    assert shown.status_code == 200 and "Turn it off" in shown.text
    assert clicked.status_code == 200 and "no more trend alerts about Python" in clicked.text
    assert tampered.status_code == 400
    assert send_all(rt, NOW + timedelta(hours=1)) == []
    with transaction(rt.sessions) as session:
        assert session.scalars(select(Alert.state)).all() == ["off"]
