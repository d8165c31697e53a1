"""Tests for send slots in the subscriber's timezone (digest/cadence.py). Pure: no database, no clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from digest.deliver.cadence import Schedule, latest_slot, next_slot, previous_slot, window
from digest.errors import InvalidInputError

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"

# (zone, the local day with a missing or repeated hour)
SPRING_FORWARD = [(BERLIN, date(2026, 3, 29)), (NEW_YORK, date(2026, 3, 8))]
FALL_BACK = [(BERLIN, date(2026, 10, 25)), (NEW_YORK, date(2026, 11, 1))]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def slots_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every slot in ``[start, end)``, walked with ``next_slot``."""
    slots = []
    slot = next_slot(schedule, start - timedelta(microseconds=1))
    while slot < end:
        slots.append(slot)
        slot = next_slot(schedule, slot)
    return slots


# --- hourly -------------------------------------------------------------------------------------


def test_it_sends_hourly_at_the_top_of_the_hour() -> None:
    schedule = Schedule("hourly", 0, 0, BERLIN)
    now = utc(2026, 5, 4, 10, 17, 33)

    assert latest_slot(schedule, now) == utc(2026, 5, 4, 10)
    assert next_slot(schedule, now) == utc(2026, 5, 4, 11)


def test_it_sends_hourly_at_the_top_of_the_local_hour_in_a_half_hour_zone() -> None:
    schedule = Schedule("hourly", 0, 0, "Asia/Kolkata")
    now = utc(2026, 5, 4, 10, 17)  # 15:47 IST

    latest = latest_slot(schedule, now)
    following = next_slot(schedule, now)

    assert latest == utc(2026, 5, 4, 9, 30)  # 15:00 IST
    assert following == utc(2026, 5, 4, 10, 30)  # 16:00 IST
    assert following.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0


def test_it_counts_a_slot_at_exactly_now_as_the_latest() -> None:
    schedule = Schedule("hourly", 0, 0, BERLIN)

    assert latest_slot(schedule, utc(2026, 5, 4, 10)) == utc(2026, 5, 4, 10)
    assert next_slot(schedule, utc(2026, 5, 4, 10)) == utc(2026, 5, 4, 11)


@pytest.mark.parametrize(
    ("tz", "day", "hours"), [*[(*c, 23) for c in SPRING_FORWARD], *[(*c, 25) for c in FALL_BACK]]
)
def test_it_sends_one_hourly_slot_per_real_hour_on_a_dst_day(tz: str, day: date, hours: int) -> None:
    schedule = Schedule("hourly", 0, 0, tz)
    start = local_midnight(day, tz)
    end = local_midnight(day + timedelta(days=1), tz)

    slots = slots_between(schedule, start, end)

    assert len(slots) == hours
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(slots))
    assert all(slot.astimezone(ZoneInfo(tz)).minute == 0 for slot in slots)


# --- daily --------------------------------------------------------------------------------------


def test_it_sends_daily_at_the_subscribers_hour_in_their_zone() -> None:
    schedule = Schedule("daily", 8, 0, NEW_YORK)
    now = utc(2026, 6, 10, 15)  # 11:00 EDT

    assert latest_slot(schedule, now) == utc(2026, 6, 10, 12)  # 08:00 EDT
    assert next_slot(schedule, now) == utc(2026, 6, 11, 12)


def test_it_uses_yesterdays_slot_before_the_hour_has_come_today() -> None:
    schedule = Schedule("daily", 8, 0, NEW_YORK)
    now = utc(2026, 6, 10, 11, 59)  # 07:59 EDT

    assert latest_slot(schedule, now) == utc(2026, 6, 9, 12)
    assert next_slot(schedule, now) == utc(2026, 6, 10, 12)


def test_it_follows_the_subscribers_winter_offset_for_a_daily_slot() -> None:
    schedule = Schedule("daily", 8, 0, NEW_YORK)

    assert latest_slot(schedule, utc(2026, 1, 15, 20)) == utc(2026, 1, 15, 13)  # 08:00 EST


@pytest.mark.parametrize(("tz", "day"), [*SPRING_FORWARD, *FALL_BACK])
@pytest.mark.parametrize("hour", range(24))
def test_it_sends_exactly_one_daily_slot_per_local_day_across_a_dst_change(
    tz: str, day: date, hour: int
) -> None:
    schedule = Schedule("daily", hour, 0, tz)
    start = local_midnight(day - timedelta(days=2), tz)
    end = local_midnight(day + timedelta(days=3), tz)

    slots = slots_between(schedule, start, end)
    per_day = Counter(slot.astimezone(ZoneInfo(tz)).date() for slot in slots)

    assert per_day == {day + timedelta(days=offset): 1 for offset in range(-2, 3)}


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_it_sends_one_daily_slot_on_a_23_hour_day(tz: str) -> None:
    day = dict(SPRING_FORWARD)[tz]
    schedule = Schedule("daily", 8, 0, tz)

    on_the_day = latest_slot(schedule, local_midnight(day + timedelta(days=1), tz))
    before = previous_slot(schedule, on_the_day)
    after = next_slot(schedule, on_the_day)

    assert on_the_day.astimezone(ZoneInfo(tz)).date() == day
    assert on_the_day - before == timedelta(hours=23)
    assert after - on_the_day == timedelta(hours=24)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_it_sends_one_daily_slot_on_a_25_hour_day(tz: str) -> None:
    day = dict(FALL_BACK)[tz]
    schedule = Schedule("daily", 8, 0, tz)

    on_the_day = latest_slot(schedule, local_midnight(day + timedelta(days=1), tz))

    assert on_the_day.astimezone(ZoneInfo(tz)).date() == day
    assert on_the_day - previous_slot(schedule, on_the_day) == timedelta(hours=25)


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        (BERLIN, date(2026, 3, 29), utc(2026, 3, 29, 1)),  # 03:00 CEST
        (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7)),  # 03:00 EDT
    ],
)
def test_a_slot_in_the_spring_forward_gap_still_happens_just_after_the_gap(
    tz: str, day: date, expected: datetime
) -> None:
    # 02:00-03:00 does not exist on these days; a 02:xx daily slot must not vanish.
    schedule = Schedule("daily", 2, 0, tz)

    slot = next_slot(schedule, local_midnight(day, tz))

    assert slot == expected
    local = slot.astimezone(ZoneInfo(tz))
    assert local.date() == day
    assert (local.hour, local.minute) == (3, 0)


def test_a_slot_in_the_repeated_fall_back_hour_is_sent_once_at_its_first_occurrence() -> None:
    schedule = Schedule("daily", 2, 0, BERLIN)

    slots = slots_between(schedule, utc(2026, 10, 24, 22), utc(2026, 10, 25, 22))

    assert slots == [utc(2026, 10, 25, 0)]  # 02:00 CEST, not 02:00 CET an hour later


# --- weekly -------------------------------------------------------------------------------------


def test_it_sends_weekly_on_the_subscribers_weekday() -> None:
    schedule = Schedule("weekly", 9, 0, BERLIN)  # Mondays 09:00
    now = utc(2026, 5, 6, 12)  # a Wednesday

    assert latest_slot(schedule, now) == utc(2026, 5, 4, 7)  # Monday 09:00 CEST
    assert next_slot(schedule, now) == utc(2026, 5, 11, 7)


def test_it_uses_last_weeks_slot_earlier_on_the_weekday_itself() -> None:
    schedule = Schedule("weekly", 9, 0, BERLIN)
    now = utc(2026, 5, 11, 6, 59)  # Monday 08:59 CEST

    assert latest_slot(schedule, now) == utc(2026, 5, 4, 7)
    assert next_slot(schedule, now) == utc(2026, 5, 11, 7)


@pytest.mark.parametrize(("tz", "hour"), [(BERLIN, 2), (BERLIN, 8), (NEW_YORK, 2), (NEW_YORK, 23)])
def test_a_weekly_series_over_ten_weeks_has_ten_slots_seven_local_days_apart(tz: str, hour: int) -> None:
    # Sundays, so the series crosses the spring-forward Sunday of both zones (in March 2026).
    schedule = Schedule("weekly", hour, 6, tz)
    start = local_midnight(date(2026, 2, 16), tz)

    slots = slots_between(schedule, start, start + timedelta(weeks=10))
    local = [slot.astimezone(ZoneInfo(tz)) for slot in slots]

    assert len(slots) == 10
    assert all(day.weekday() == 6 for day in local)
    assert all((b.date() - a.date()).days == 7 for a, b in pairwise(local))


# --- invariants over many instants ---------------------------------------------------------------

SCHEDULES = [
    Schedule("hourly", 0, 0, "UTC"),
    Schedule("hourly", 0, 0, "Asia/Kolkata"),
    Schedule("hourly", 0, 0, BERLIN),
    Schedule("hourly", 0, 0, "Australia/Lord_Howe"),  # DST shifts by 30 minutes
    Schedule("daily", 0, 0, BERLIN),
    Schedule("daily", 2, 0, BERLIN),
    Schedule("daily", 8, 0, NEW_YORK),
    Schedule("daily", 23, 0, "Pacific/Auckland"),
    Schedule("weekly", 2, 6, BERLIN),
    Schedule("weekly", 1, 6, NEW_YORK),
    Schedule("weekly", 9, 0, "Asia/Kolkata"),
]
# Every 37 minutes around each DST change of 2026 in the zones above.
INSTANTS = [
    start + timedelta(minutes=37 * step)
    for start in (
        utc(2026, 3, 7, 12),
        utc(2026, 3, 28, 12),
        utc(2026, 4, 4, 6),
        utc(2026, 9, 26, 6),
        utc(2026, 10, 3, 6),
        utc(2026, 10, 24, 12),
        utc(2026, 10, 31, 12),
    )
    for step in range(0, 3 * 24 * 60 // 37)
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s.cadence}-{s.hour}-{s.timezone}")
def test_the_next_slot_after_the_latest_slot_is_always_after_now(schedule: Schedule) -> None:
    wrong = [
        now
        for now in INSTANTS
        if not latest_slot(schedule, now) <= now < next_slot(schedule, latest_slot(schedule, now))
    ]

    assert wrong == []


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s.cadence}-{s.hour}-{s.timezone}")
def test_the_previous_slot_of_a_slot_is_the_one_whose_next_slot_it_is(schedule: Schedule) -> None:
    wrong = []
    for now in INSTANTS[::7]:
        slot = latest_slot(schedule, now)
        before = previous_slot(schedule, slot)
        if not (before < slot and next_slot(schedule, before) == slot):
            wrong.append(now)

    assert wrong == []


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "hour", "weekday", "tz"),
    [
        ("daily", 24, 0, "UTC"),
        ("daily", -1, 0, "UTC"),
        ("weekly", 8, 7, "UTC"),
        ("weekly", 8, -1, "UTC"),
        ("daily", 8, 0, "Mars/Base"),
        ("daily", 8, 0, ""),
        ("daily", 8, 0, "../../etc/passwd"),
        ("monthly", 8, 0, "UTC"),
        ("Daily", 8, 0, "UTC"),
    ],
)
def test_it_refuses_an_invalid_schedule(cadence: str, hour: int, weekday: int, tz: str) -> None:
    with pytest.raises(InvalidInputError):
        Schedule(cadence, hour, weekday, tz)


def test_it_sends_hourly_at_the_top_of_the_local_hour_when_dst_shifts_by_half_an_hour() -> None:
    # Lord Howe Island leaves DST at 02:00 (+11:00) on 2026-04-05 by going back to 01:30 (+10:30);
    # the next top of a local hour after 01:00 +11:00 (14:00Z) is 02:00 +10:30 (15:30Z).
    schedule = Schedule("hourly", 0, 0, "Australia/Lord_Howe")

    assert next_slot(schedule, utc(2026, 4, 4, 14)) == utc(2026, 4, 4, 15, 30)


DAILY_7_UTC = Schedule("daily", 7, 0, "UTC")


def test_the_window_of_a_new_subscription_missed_for_three_days_starts_a_period_before_its_first_slot() -> (
    None
):
    # Created 11-16 09:30: first due 11-17 07:00, its first window one period before that (issue 13).
    created = utc(2026, 11, 16, 9, 30)
    first_due = next_slot(DAILY_7_UTC, created)

    assert window(DAILY_7_UTC, None, first_due, created) == (utc(2026, 11, 16, 7), utc(2026, 11, 17, 7))
    assert window(DAILY_7_UTC, None, first_due, utc(2026, 11, 19, 9)) == (
        utc(2026, 11, 16, 7),
        utc(2026, 11, 19, 7),
    )


def test_the_window_starts_where_the_last_ended_and_ends_at_the_latest_slot_by_the_dispatch() -> None:
    last = utc(2026, 11, 18, 7)

    assert window(DAILY_7_UTC, last, utc(2026, 11, 19, 7), utc(2026, 11, 18, 12)) == (
        last,
        utc(2026, 11, 19, 7),
    )
    assert window(DAILY_7_UTC, last, utc(2026, 11, 19, 7), utc(2026, 11, 21, 8)) == (
        last,
        utc(2026, 11, 21, 7),
    )


def test_a_last_window_ending_past_the_schedule_s_latest_slot_waits_for_the_slot_after_it() -> None:
    # A move from hourly to daily at 07:00 right after the 10:00 hourly digest: the next window runs
    # from 10:00 to the next 07:00, never backwards.
    last = utc(2026, 11, 18, 10)

    assert window(DAILY_7_UTC, last, utc(2026, 11, 18, 7), utc(2026, 11, 18, 10, 30)) == (
        last,
        utc(2026, 11, 19, 7),
    )
