"""Send slots and windows in the subscriber's timezone. Pure: every function takes the instant it needs.

A slot is the scheduled send time (08:00 local for a daily digest); a window is ``[start, end)`` over
ingestion time and ends at a slot, so one slot always names one window. Slots are computed per local
date, so a 23- or 25-hour day still has exactly one daily slot, and an hour that does not exist on a
spring-forward day (02:30) resolves, with ``fold=0``, to the instant just after the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import InvalidInputError
from digest.vocabulary import CADENCES

_QUARTER = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a subscription is sent: cadence, local hour, weekday (0 = Monday) and IANA timezone."""

    cadence: str
    hour: int
    weekday: int
    timezone: str

    def __post_init__(self) -> None:
        check_cadence(self.cadence)
        if not 0 <= self.hour <= 23:
            raise InvalidInputError(f"hour {self.hour} is not between 0 and 23")
        if not 0 <= self.weekday <= 6:
            raise InvalidInputError(f"weekday {self.weekday} is not between 0 (Monday) and 6 (Sunday)")
        zone(self.timezone)


def check_cadence(cadence: str) -> str:
    """Return ``cadence`` or raise ``InvalidInputError``."""
    if cadence not in CADENCES:
        raise InvalidInputError(f"unknown cadence {cadence!r}: use hourly, daily or weekly")
    return cadence


def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name``, or ``InvalidInputError``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin"
        ) from None


def latest_slot(schedule: Schedule, now: datetime) -> datetime:
    """The last slot at or before ``now`` (UTC)."""
    tz = zone(schedule.timezone)
    if schedule.cadence == "hourly":
        return _top_of_hour(tz, _quarter(now), -_QUARTER)
    day = now.astimezone(tz).date()
    if schedule.cadence == "weekly":
        day -= timedelta(days=(day.weekday() - schedule.weekday) % 7)
    step = timedelta(days=7 if schedule.cadence == "weekly" else 1)
    while (slot := _slot_on(day, schedule.hour, tz)) > now:
        day -= step
    return slot


def next_slot(schedule: Schedule, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (UTC)."""
    tz = zone(schedule.timezone)
    if schedule.cadence == "hourly":
        return _top_of_hour(tz, _quarter(after) + _QUARTER, _QUARTER)
    day = latest_slot(schedule, after).astimezone(tz).date()
    step = timedelta(days=7 if schedule.cadence == "weekly" else 1)
    while (slot := _slot_on(day, schedule.hour, tz)) <= after:
        day += step
    return slot


def previous_slot(schedule: Schedule, slot: datetime) -> datetime:
    """The slot before ``slot``: where a new subscription's first window starts (one period back)."""
    return latest_slot(schedule, slot - timedelta(microseconds=1))


def window(
    schedule: Schedule, last_end: datetime | None, next_due: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` the next dispatch of a subscription opens, as seen at ``now``.

    The next dispatch runs at ``next_due`` or, when that has passed (missed ticks, a sending pause), at
    ``now``, and closes the window at the latest slot by then. It starts where the last window ended, or
    one period before ``next_due`` for a subscription never sent. When a cadence change left the last end
    at or past that slot, the dispatch only moves ``next_due`` on, and the window ends at the slot after
    the last end. The dispatch, ``digest preview``, the admin and the manage page all ask this function,
    so what they show is what will be sent (issue 13).
    """
    end = latest_slot(schedule, max(now, next_due))
    start = last_end if last_end is not None else previous_slot(schedule, next_due)
    if end <= start:
        end = next_slot(schedule, start)
    return start, end


def _quarter(moment: datetime) -> datetime:
    """``moment`` rounded down to a quarter hour in UTC."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def _top_of_hour(tz: ZoneInfo, start: datetime, step: timedelta) -> datetime:
    """The first quarter hour from ``start`` (walking by ``step``) that is a whole hour on local clocks.

    Every UTC offset in use is a multiple of 15 minutes, and some zones shift by 30 minutes at DST
    (Australia/Lord_Howe), so the local top of the hour is found by looking rather than by adding an hour.
    """
    moment = start
    while moment.astimezone(tz).minute != 0:
        moment += step
    return moment


def _slot_on(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)
