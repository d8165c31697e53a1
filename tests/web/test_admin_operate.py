"""The admin for the person on call (issue 17): the health banner on every page, sending as a switch with
a confirmation, feed actions, and the audit log with filters and paging."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from digest import health
from digest.db import transaction
from digest.deliver import suppression
from digest.deliver.cadence import Schedule
from digest.deliver.subscribers import subscribe
from digest.deliver.unsubscribe import unsubscribe
from digest.models import AuditEntry, Source
from digest.ops import audit
from digest.records import DeliveryStatus
from digest.runtime import Runtime
from tests.web.conftest import CLOCK
from tests.web_support import csrf

DAILY = Schedule("daily", 8, 0, "UTC")


def add_feed(rt: Runtime, name: str, *, fetched_days_ago: float | None, state: str = "active") -> int:
    with transaction(rt.sessions) as session:
        fetched = CLOCK - timedelta(days=fetched_days_ago) if fetched_days_ago is not None else None
        source = Source(
            url=f"https://{name.lower().replace(' ', '-')}.example/feed",
            name=name,
            kind="news",
            state=state,
            next_fetch_at=CLOCK + timedelta(hours=1),
            created_at=CLOCK - timedelta(days=30),
            last_fetched_at=fetched,
        )
        session.add(source)
        session.flush()
        return source.id


def source(rt: Runtime, source_id: int) -> Source:
    with transaction(rt.sessions) as session:
        found = session.get(Source, source_id)
        assert found is not None
        session.expunge(found)
        return found


def actions(rt: Runtime, prefix: str) -> list[tuple[str, str | None]]:
    with transaction(rt.sessions) as session:
        return [(e.action, e.result) for e in reversed(audit.entries(session, action=prefix))]


def test_every_admin_page_but_the_login_carries_the_health_banner(client: httpx.Client) -> None:
    for path in ("/admin", "/admin/feeds", "/admin/audit", "/admin/sending", "/admin/subscribers"):
        page = client.get(path).text
        assert 'aria-label="Health"' in page, path
        # No beat ran in this DIGEST_HOME: the banner says so first, in red.
        assert "Unhealthy:</strong> beat: no tick in two periods" in page
        assert 'workers: <span class="muted">not available on the filesystem broker' in page
    assert 'aria-label="Health"' not in httpx.get(f"{client.base_url}/admin/login").text


def test_a_feed_eight_days_overdue_is_in_the_banner_and_first_on_the_feeds_page(
    client: httpx.Client, rt: Runtime
) -> None:
    add_feed(rt, "Fresh news", fetched_days_ago=0.01)
    late = add_feed(rt, "Stuck news", fetched_days_ago=8)

    banner = client.get("/admin").text
    page = client.get("/admin/feeds").text

    assert "1 feed overdue by more than twice the interval" in banner
    assert page.index("Stuck news") < page.index("Fresh news")
    # Not "fine": the row says how late it is.
    assert "overdue 7 d" in page or "overdue 8 d" in page
    with transaction(rt.sessions) as session:
        [overdue] = health.overdue_feeds(session, CLOCK)
    assert overdue.id == late


def test_warnings_name_overdue_feeds_and_deliveries_failed_in_the_last_hour() -> None:
    status = health.Status(
        at=CLOCK,
        broker="redis",
        queues={"deliver": 0},
        queues_note=None,
        workers=["w1"],
        workers_note=None,
        beat_last_tick=CLOCK,
        beat_alive=True,
        sending_paused=False,
        failing_feeds=[],
        overdue_feeds=[health.FailingFeed(1, "a", "https://a.example/", "active", 0, "overdue 3 d")] * 2,
        deliveries_last_hour={DeliveryStatus.SENT: 40, DeliveryStatus.FAILED: 1},
        deliveries_waiting={},
    )

    assert status.problems == []
    assert status.warnings == [
        "2 feeds overdue by more than twice the interval",
        "1 delivery failed in the last hour",
    ]
    assert status.as_json()["healthy"] is True and status.as_json()["warnings"] == status.warnings


def test_sending_is_paused_only_after_its_confirmation_and_the_banner_shows_it_at_once(
    client: httpx.Client, rt: Runtime
) -> None:
    page = client.get("/admin/sending")
    assert "Sending is on" in page.text and 'href="/admin/sending?to=pause"' in page.text
    ask = client.get("/admin/sending?to=pause")
    assert "Pause sending?" in ask.text

    unconfirmed = client.post("/admin/sending", data={"csrf": csrf(ask.text), "to": "pause"})
    confirmed = client.post(
        "/admin/sending", data={"csrf": csrf(ask.text), "to": "pause", "confirmed": "yes"}
    )
    after = client.get(confirmed.headers["location"]).text
    nonsense = client.post("/admin/sending", data={"csrf": csrf(ask.text), "to": "off", "confirmed": "yes"})

    assert unconfirmed.status_code == 400 and "Pause sending?" in unconfirmed.text
    assert confirmed.status_code == 303 and "Sending is paused" in after
    assert "Unhealthy:</strong> sending is paused" in after
    assert nonsense.status_code == 400
    with transaction(rt.sessions) as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "sending.pause")).all()
    assert entry.actor == "web:admin"

    ask = client.get("/admin/sending?to=resume")
    client.post("/admin/sending", data={"csrf": csrf(ask.text), "to": "resume", "confirmed": "yes"})
    assert "Sending is on" in client.get("/admin/sending").text


def test_a_feed_is_paused_resumed_fetched_now_and_given_an_interval_and_each_is_audited(
    client: httpx.Client, rt: Runtime
) -> None:
    feed = add_feed(rt, "Loop news", fetched_days_ago=0.01)
    token = csrf(client.get("/admin/feeds").text)

    def post(action: str, **data: str) -> httpx.Response:
        return client.post(f"/admin/feeds/{feed}/{action}", data={"csrf": token, **data})

    paused = post("pause")
    assert source(rt, feed).state == "paused"
    refused = post("fetch")
    resumed = post("resume")
    assert source(rt, feed).state == "active"
    fetched = post("fetch")
    assert source(rt, feed).next_fetch_at == CLOCK
    interval = post("interval", value="30m")
    assert source(rt, feed).interval_seconds == 1800
    bad_interval = post("interval", value="often")
    default = post("interval", value="")
    assert source(rt, feed).interval_seconds is None
    unknown = post("explode")

    assert all(r.status_code == 303 for r in (paused, refused, resumed, fetched, interval, bad_interval))
    assert "feed+" not in paused.headers["location"]  # the message is encoded as one query value
    refused_page = client.get(refused.headers["location"]).text
    assert "is paused: resume it first" in refused_page and 'role="alert"' in refused_page
    assert "due now: the next crawl tick fetches it" in client.get(fetched.headers["location"]).text
    assert "takes a duration" in client.get(bad_interval.headers["location"]).text or "duration" in (
        client.get(bad_interval.headers["location"]).text
    )
    assert default.status_code == 303 and unknown.status_code == 303
    assert [action for action, _ in actions(rt, "feed.")] == [
        "feed.pause",
        "feed.fetch",
        "feed.resume",
        "feed.fetch",
        "feed.interval",
        "feed.interval",
        "feed.interval",
    ]
    results = [result or "" for _, result in actions(rt, "feed.")]
    assert results[1].startswith("refused:") and results[5].startswith("refused:")


def test_the_audit_page_filters_by_action_actor_and_day_and_pages_fifty_at_a_time(
    client: httpx.Client, rt: Runtime
) -> None:
    with transaction(rt.sessions) as session:
        for n in range(60):
            audit.record(session, "cli:ops", "cadence.set", {"n": n}, CLOCK - timedelta(hours=n), "ok")
        audit.record(session, "web:admin", "feed.pause", {"feed": 1}, CLOCK, "ok")
        audit.record(session, "web:admin", "feed.resume", {"feed": 1}, CLOCK, "ok")

    first = client.get("/admin/audit?action=cadence.set").text
    older = first.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    second = client.get(older).text
    feeds = client.get("/admin/audit?action=feed.").text
    by_admin = client.get("/admin/audit?actor=web:admin").text
    one_day = client.get("/admin/audit?action=cadence.set&from=2026-11-15&to=2026-11-15").text
    bad = client.get("/admin/audit?from=yesterday")

    assert first.count("cadence.set</td>") == 50 and "Older entries" in first
    assert second.count("cadence.set</td>") == 10 and "Older entries" not in second
    assert "before=" in older and "action=cadence.set" in older
    assert feeds.count("feed.pause</td>") == 1 and feeds.count("feed.resume</td>") == 1
    assert "cadence.set</td>" not in feeds
    assert "cadence.set</td>" not in by_admin and "feed.pause</td>" in by_admin
    # CLOCK is 09:30 on the 16th: entries n = 10..33 fall on the 15th.
    assert one_day.count("cadence.set</td>") == 24
    assert bad.status_code == 400 and "from: write a date like 2026-11-29" in bad.text


def test_someone_whose_only_subscription_ended_is_counted_unsubscribed_with_no_next_digest(
    client: httpx.Client, rt: Runtime
) -> None:
    with transaction(rt.sessions) as session:
        kept = subscribe(session, "kept@example.com", ["Python"], DAILY, CLOCK, confirmed=True)
        gone = subscribe(session, "gone@example.com", ["Python"], DAILY, CLOCK, confirmed=True)
        unsubscribe(session, gone.id)

    overview = client.get("/admin").text
    page = client.get("/admin/subscribers?q=gone").text

    assert re.search(r'<th scope="row">active</th><td>1</td>', overview)
    assert re.search(r'<th scope="row">unsubscribed</th><td>1</td>', overview)
    assert "<p>unsubscribed" in page and "<td>unsubscribed</td>" in page
    assert "<p>active" in client.get("/admin/subscribers?q=kept").text
    with transaction(rt.sessions) as session:
        assert suppression.person_states(session) == {
            kept.subscriber_id: "active",
            gone.subscriber_id: "unsubscribed",
        }
