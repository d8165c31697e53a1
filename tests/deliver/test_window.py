"""`digest preview` shows the window the next dispatch opens, through a subscription's whole life (issue 13).

One subscription is walked through its creation, three missed days, cadence changes, a sending pause and a
subscription pause. At each step the preview is taken at that moment, then the next dispatch runs (at once
when the window is due, else at its end) and must open exactly the window the preview showed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from digest.db import transaction
from digest.deliver import digests, subscribers
from digest.deliver.cadence import Schedule
from digest.models import Delivery
from digest.ops import sending
from digest.runtime import Runtime
from digest.tokens import MANAGE, make_token
from digest.web import create_app
from tests.web_support import serve

EMAIL = "walker@example.com"
Window = tuple[datetime, datetime]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def preview_window(rt: Runtime, now: datetime) -> Window:
    shown = digests.preview(rt.sessions, EMAIL, None, now, rt.composer, rt.delivery).content
    return shown.window_start, shown.window_end


def dispatched(rt: Runtime, now: datetime) -> list[Window]:
    """The windows a dispatch at ``now`` opens (not the older deliveries it enqueues again)."""
    for _batch in digests.dispatch_due(rt.sessions, now):
        pass
    with transaction(rt.sessions) as session:
        rows = session.execute(
            select(Delivery.window_start, Delivery.window_end).where(Delivery.created_at == now)
        ).all()
    return [(row.window_start, row.window_end) for row in rows]


def preview_then_dispatch(rt: Runtime, now: datetime) -> Window:
    """The preview at ``now``, checked against what the next dispatch (at ``now`` if due) opens."""
    shown = preview_window(rt, now)
    assert dispatched(rt, max(now, shown[1] + timedelta(seconds=30))) == [shown]
    return shown


def change(rt: Runtime, now: datetime, **fields: object) -> None:
    with transaction(rt.sessions) as session:
        info = subscribers.subscriptions_of(session, subscribers.subscriber_id(session, EMAIL) or 0)[0]
        schedule = Schedule(
            str(fields.get("cadence", info.cadence)),
            int(str(fields.get("hour", info.hour))),
            int(str(fields.get("weekday", info.weekday))),
            info.timezone,
        )
        subscribers.change_schedule(session, info.subscriber_id, info.id, schedule, now)


def subscription(rt: Runtime) -> tuple[int, int]:
    with transaction(rt.sessions) as session:
        info = subscribers.subscriptions_of(session, subscribers.subscriber_id(session, EMAIL) or 0)[0]
        return info.subscriber_id, info.id


def test_preview_and_dispatch_open_the_same_window_at_every_step_of_a_subscription_s_life(
    rt: Runtime,
) -> None:
    created = at("2026-11-16T09:30")
    with transaction(rt.sessions) as session:
        subscribers.subscribe(
            session, EMAIL, ("Python",), Schedule("daily", 7, 0, "UTC"), created, confirmed=True
        )

    # Just created: the first window is the day before its first slot.
    assert preview_window(rt, created) == (at("2026-11-16T07:00"), at("2026-11-17T07:00"))
    # Three days without a dispatch: one window covering them, from the same start (the example).
    assert preview_then_dispatch(rt, at("2026-11-19T09:00")) == (
        at("2026-11-16T07:00"),
        at("2026-11-19T07:00"),
    )
    # Not due: the window now open, up to the next slot.
    assert preview_then_dispatch(rt, at("2026-11-19T12:00")) == (
        at("2026-11-19T07:00"),
        at("2026-11-20T07:00"),
    )

    # Daily to hourly, then hourly to weekly (Monday 07:00): each window starts where the last ended.
    change(rt, at("2026-11-20T08:10"), cadence="hourly")
    assert preview_then_dispatch(rt, at("2026-11-20T08:20")) == (
        at("2026-11-20T07:00"),
        at("2026-11-20T09:00"),
    )
    change(rt, at("2026-11-20T10:00"), cadence="weekly", weekday=0)
    assert preview_then_dispatch(rt, at("2026-11-20T10:05")) == (
        at("2026-11-20T09:00"),
        at("2026-11-23T07:00"),
    )

    # Sending paused over a slot: no dispatch opens anything, and resuming opens the window the preview
    # showed all along.
    with transaction(rt.sessions) as session:
        sending.set_paused(session, paused=True, actor="test", now=at("2026-11-23T08:00"))
    assert preview_window(rt, at("2026-11-30T09:00")) == (at("2026-11-23T07:00"), at("2026-11-30T07:00"))
    assert dispatched(rt, at("2026-11-30T09:00")) == []
    with transaction(rt.sessions) as session:
        sending.set_paused(session, paused=False, actor="test", now=at("2026-12-01T10:00"))
    assert preview_then_dispatch(rt, at("2026-12-01T10:00")) == (
        at("2026-11-23T07:00"),
        at("2026-11-30T07:00"),
    )

    # The subscription paused over a slot: nothing is opened; resumed, it starts from the slot before the
    # next one (what was published meanwhile is not sent), and the preview says so.
    subscriber_id, subscription_id = subscription(rt)
    with transaction(rt.sessions) as session:
        subscribers.pause(session, subscriber_id, subscription_id)
    assert dispatched(rt, at("2026-12-07T09:00")) == []
    with transaction(rt.sessions) as session:
        subscribers.resume(session, subscriber_id, subscription_id, at("2026-12-09T10:00"))
    assert preview_then_dispatch(rt, at("2026-12-09T10:00")) == (
        at("2026-12-07T07:00"),
        at("2026-12-14T07:00"),
    )


def test_the_manage_page_says_when_the_next_digest_comes_from_the_same_window(rt: Runtime) -> None:
    # Created Monday 11-16 09:30 UTC, daily at 08:00 in Berlin (07:00 UTC), not sent for three days.
    with transaction(rt.sessions) as session:
        info = subscribers.subscribe(
            session,
            EMAIL,
            ("Python",),
            Schedule("daily", 8, 0, "Europe/Berlin"),
            at("2026-11-16T09:30"),
            confirmed=True,
        )
    token = make_token(rt.settings.secret_key, MANAGE, {"u": info.subscriber_id})
    overdue, waiting = at("2026-11-19T09:00"), at("2026-11-19T12:00")

    pages = {}
    for now in (overdue, waiting):
        with serve(create_app(rt.settings, clock=lambda now=now: now)) as http:
            pages[now] = http.get(f"/manage/{token}").text
        if now == overdue:
            assert preview_then_dispatch(rt, now)[1] == at("2026-11-19T07:00")

    assert "Next digest: Thu 19 Nov, 08:00 (Europe/Berlin)" in pages[overdue]
    assert "Next digest: Fri 20 Nov, 08:00 (Europe/Berlin)" in pages[waiting]
    assert preview_window(rt, waiting)[1] == at("2026-11-20T07:00")
