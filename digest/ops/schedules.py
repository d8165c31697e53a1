"""Run-time cadences: the periodic schedules beat reads and the settings ops change without a deploy.

Two tables hold them. ``schedules`` has one row per periodic task (crawl tick, dispatch tick, alert
check), each every N seconds or on a 5-field cron expression (UTC), read by ``digest.beat``. ``settings``
holds the rest as small JSON values: the default fetch interval of each feed kind, the default hour and
weekday of new subscriptions, and whether sending is paused. A missing row means the default below, so a
database migrated without ``digest db upgrade`` (tests, an older install) still behaves as before.

Every change is made through ``set_schedule`` (sending paused: ``ops.sending.set_paused``), which
validates the value and writes an audit entry in the caller's transaction. The command line and the
admin API call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import InvalidInputError, NotFoundError
from digest.models import Schedule, Setting, Source
from digest.ops import audit
from digest.vocabulary import (
    DEFAULT_INTERVALS,
    MAX_INTERVAL,
    MIN_INTERVAL,
    WEEKDAYS,
    interval_for,
    parse_duration,
)

# Below 10 s a tick mostly finds nothing to do and crowds the broker; above a day feeds go stale.
MIN_TICK = 10
MAX_TICK = 24 * 60 * 60
CRON_FIELDS = 5
FEED_INTERVAL = "feed-interval."
DEFAULT_HOUR = "default-hour"
DEFAULT_WEEKDAY = "default-weekday"
# One feed's own interval: ``feed.<id>``, a duration or ``default`` (its kind's interval).
FEED = "feed."


@dataclass(frozen=True, slots=True)
class _Task:
    task: str
    every_seconds: int
    enabled: bool


# The rows beat needs.
DEFAULT_SCHEDULES = {
    "crawl-tick": _Task("digest.crawl_tick", 60, True),
    "dispatch-tick": _Task("digest.dispatch_tick", 60, True),
    # Trend alerts (issue 8): one check every 5 minutes opens at most one email per alert and day.
    "alert-check": _Task("digest.alert_tick", 5 * 60, True),
    # The daily skill figures behind skill pages (issue 8): yesterday and today, rebuilt.
    "figures-refresh": _Task("digest.refresh_figures", 10 * 60, True),
    # Retention (issue 19): daily, in short batches; an interrupted prune finishes on the next run.
    "retention-prune": _Task("digest.prune", 24 * 60 * 60, True),
    # Late bounces (issue 19): the bounce mailbox, read every 5 minutes when DIGEST_BOUNCE_MAILBOX is set.
    "bounces-read": _Task("digest.read_bounces", 5 * 60, True),
}
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    **{FEED_INTERVAL + kind: {"seconds": seconds} for kind, seconds in DEFAULT_INTERVALS.items()},
    DEFAULT_HOUR: {"hour": 8},
    DEFAULT_WEEKDAY: {"weekday": "monday"},
}


@dataclass(frozen=True, slots=True)
class CadenceInfo:
    """One schedule or setting as ``digest cadence show`` and the admin API list it.

    ``kind`` is ``schedule`` (a beat entry: duration or cron), ``interval`` (a feed kind's default fetch
    interval), ``hour`` or ``weekday`` (defaults for new subscriptions). ``updated_at`` is None while the
    value is the built-in default, never written to the database.
    """

    name: str
    value: str
    kind: str
    enabled: bool
    updated_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The shape scripts and the admin API read."""
        return {
            "name": self.name,
            "value": self.value,
            "kind": self.kind,
            "enabled": self.enabled,
            "updated_at": iso_utc(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class BeatEntry:
    """An enabled schedule row, as beat needs it: exactly one of ``every_seconds`` and ``cron`` is set."""

    name: str
    task: str
    every_seconds: int | None
    cron: str | None


def iso_utc(moment: datetime | None) -> str | None:
    # The same form as every other --json output of the command line: UTC with a Z.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def format_duration(seconds: int) -> str:
    """``seconds`` in the largest unit that divides it: 900 is ``15m``, 90 is ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_cron(text: str) -> str:
    """A 5-field cron expression (minute hour day-of-month month day-of-week, UTC), normalised to single
    spaces; ``InvalidInputError`` if it has another number of fields or a field celery cannot read.
    """
    fields = text.split()
    if len(fields) != CRON_FIELDS:
        raise InvalidInputError(
            f"not a cron expression: {text!r} (use 5 fields: minute hour day-of-month month day-of-week, "
            "like '0 8 * * *')"
        )
    expression = " ".join(fields)
    # Imported here: celery.schedules costs 0.15 s, and every command imports this module through crawl.
    from celery.schedules import crontab

    try:
        crontab.from_string(expression)
    except ValueError as exc:
        raise InvalidInputError(f"not a cron expression: {text!r} ({exc})") from None
    return expression


def parse_hour(text: str) -> int:
    """An hour of the day, 0 to 23."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 0 <= int(value) <= 23:
        raise InvalidInputError(f"not an hour: {text!r} (use a whole hour from 0 to 23)")
    return int(value)


def parse_weekday(text: str) -> str:
    """A weekday name, monday to sunday (the first three letters will do)."""
    value = text.strip().lower()
    for day in WEEKDAYS:
        if len(value) >= 3 and day.startswith(value):
            return day
    raise InvalidInputError(f"not a weekday: {text!r} (use monday, tuesday, … sunday)")


def _bounded_duration(name: str, text: str, low: int, high: int) -> int:
    seconds = parse_duration(text)
    if not low <= seconds <= high:
        raise InvalidInputError(
            f"{name} must be from {format_duration(low)} to {format_duration(high)}, not {text.strip()!r}"
        )
    return seconds


def ensure_defaults(session: Session, now: datetime) -> list[str]:
    """Insert every default schedule and setting row that is missing; never change an existing one.

    Returns the names inserted. Called by ``digest db upgrade``, so the rows are there to be listed,
    edited and audited, without a migration for each new one.
    """
    added = []
    have = set(session.scalars(select(Schedule.name)))
    for name, default in DEFAULT_SCHEDULES.items():
        if name not in have:
            session.add(
                Schedule(
                    name=name,
                    task=default.task,
                    every_seconds=default.every_seconds,
                    cron=None,
                    enabled=default.enabled,
                    updated_at=now,
                )
            )
            added.append(name)
    have = set(session.scalars(select(Setting.key)))
    for key, value in DEFAULT_SETTINGS.items():
        if key not in have:
            session.add(Setting(key=key, value=dict(value), updated_at=now))
            added.append(key)
    session.flush()
    return added


def list_schedules(session: Session) -> list[CadenceInfo]:
    """Every schedule row (defaults not yet stored included), then every cadence setting, by name."""
    rows = {row.name: row for row in session.scalars(select(Schedule))}
    infos = []
    for name in sorted(rows.keys() | DEFAULT_SCHEDULES.keys()):
        row = rows.get(name)
        if row is None:
            default = DEFAULT_SCHEDULES[name]
            value, enabled, updated = format_duration(default.every_seconds), default.enabled, None
        else:
            value, enabled, updated = _schedule_value(row), row.enabled, row.updated_at
        infos.append(CadenceInfo(name, value, "schedule", enabled, updated))
    settings = {
        row.key: row for row in session.scalars(select(Setting).where(Setting.key.in_(DEFAULT_SETTINGS)))
    }
    for key in sorted(DEFAULT_SETTINGS):
        stored = settings.get(key)
        raw = stored.value if stored else DEFAULT_SETTINGS[key]
        updated = stored.updated_at if stored else None
        infos.append(CadenceInfo(key, _setting_value(key, raw), _setting_kind(key), True, updated))
    return infos


def set_schedule(session: Session, name: str, value: str, actor: str, now: datetime) -> CadenceInfo:
    """Validate ``value`` for the schedule or setting ``name``, store it and audit it (``cadence.set``).

    Schedules take a duration from 10s to 1d, a 5-field cron expression (UTC), or ``on``/``off``;
    feed-kind intervals a duration from 1m to 1d; ``default-hour`` 0–23; ``default-weekday`` a day name.
    Raises ``InvalidInputError`` naming the accepted forms. Beat picks a schedule change up within its
    refresh interval (``digest.beat``); crawls and subscriptions read the settings when they next need
    them.
    """
    if name.startswith(FEED):
        return _set_feed_interval(session, name, value, actor, now)
    previous = {info.name: info.value for info in list_schedules(session)}
    if name not in previous:
        names = ", ".join(sorted(previous))
        raise InvalidInputError(f"no schedule or setting called {name!r}: use one of {names}, or feed.<id>")
    if name in DEFAULT_SCHEDULES or session.get(Schedule, name) is not None:
        _set_schedule_row(session, name, value, now)
    else:
        session.merge(Setting(key=name, value=_parse_setting(name, value), updated_at=now))
        session.flush()
    info = next(info for info in list_schedules(session) if info.name == name)
    audit.record(
        session,
        actor,
        "cadence.set",
        {"name": name, "value": value, "previous": previous[name]},
        now,
        result=info.value if info.enabled else f"{info.value} (off)",
    )
    return info


def _set_feed_interval(session: Session, name: str, value: str, actor: str, now: datetime) -> CadenceInfo:
    """``feed.<id>``: one feed's fetch interval, or ``default`` for its kind's. A shorter interval brings
    the next fetch forward, so the change shows within one crawl tick."""
    number = name.removeprefix(FEED)
    source = session.get(Source, int(number)) if number.isdigit() else None
    if source is None:
        raise NotFoundError(f"no feed with id {number!r} (see digest feeds list)")
    previous = _feed_value(source)
    if value.strip().lower() == "default":
        source.interval_seconds = None
    else:
        try:
            source.interval_seconds = _bounded_duration(name, value, MIN_INTERVAL, MAX_INTERVAL)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc}; or default for the {source.kind} interval") from None
    interval = interval_for(source.kind, source.interval_seconds, feed_intervals(session))
    if source.next_fetch_at > now + timedelta(seconds=interval):
        source.next_fetch_at = now + timedelta(seconds=interval)
    info = CadenceInfo(name, _feed_value(source), "feed", source.state == "active", now)
    audit.record(session, actor, "cadence.set", {"name": name, "value": value, "previous": previous}, now)
    return info


def _feed_value(source: Source) -> str:
    if source.interval_seconds is None:
        return "default"
    return format_duration(source.interval_seconds)


def _set_schedule_row(session: Session, name: str, value: str, now: datetime) -> None:
    row = session.get(Schedule, name)
    if row is None:
        default = DEFAULT_SCHEDULES[name]
        row = Schedule(
            name=name, task=default.task, every_seconds=default.every_seconds, enabled=default.enabled
        )
        session.add(row)
    text = value.strip().lower()
    if text in ("on", "off"):
        row.enabled = text == "on"
    elif len(text.split()) == CRON_FIELDS:
        row.cron, row.every_seconds = parse_cron(value), None
    else:
        try:
            row.every_seconds, row.cron = _bounded_duration(name, value, MIN_TICK, MAX_TICK), None
        except InvalidInputError:
            raise InvalidInputError(
                f"{name} takes a duration from 10s to 1d (like 30s, 15m, 1h), a 5-field cron expression "
                f"(like '0 8 * * *', UTC), on or off; not {value.strip()!r}"
            ) from None
    row.updated_at = now
    session.flush()


def _parse_setting(key: str, value: str) -> dict[str, Any]:
    if key.startswith(FEED_INTERVAL):
        return {"seconds": _bounded_duration(key, value, MIN_INTERVAL, MAX_INTERVAL)}
    if key == DEFAULT_HOUR:
        return {"hour": parse_hour(value)}
    return {"weekday": parse_weekday(value)}


def _schedule_value(row: Schedule) -> str:
    if row.cron:
        return row.cron
    return format_duration(row.every_seconds) if row.every_seconds else ""


def _setting_kind(key: str) -> str:
    if key.startswith(FEED_INTERVAL):
        return "interval"
    return "hour" if key == DEFAULT_HOUR else "weekday"


def _setting_value(key: str, raw: dict[str, Any]) -> str:
    if key.startswith(FEED_INTERVAL):
        return format_duration(int(raw["seconds"]))
    return str(raw["hour"] if key == DEFAULT_HOUR else raw["weekday"])


def beat_entries(session: Session) -> list[BeatEntry]:
    """The enabled schedule rows that have a cadence, by name."""
    rows = session.scalars(select(Schedule).where(Schedule.enabled.is_(True)).order_by(Schedule.name))
    return [
        BeatEntry(row.name, row.task, None if row.cron else row.every_seconds, row.cron)
        for row in rows
        if row.cron or row.every_seconds
    ]


def feed_intervals(session: Session) -> dict[str, int]:
    """The default fetch interval of each feed kind, in seconds."""
    stored = {
        row.key.removeprefix(FEED_INTERVAL): int(row.value["seconds"])
        for row in session.scalars(select(Setting).where(Setting.key.startswith(FEED_INTERVAL)))
    }
    return {kind: stored.get(kind, seconds) for kind, seconds in DEFAULT_INTERVALS.items()}


def subscription_defaults(session: Session) -> tuple[int, int]:
    """The local hour and the weekday (0 = Monday) a new subscription gets unless it names its own."""
    hour = session.get(Setting, DEFAULT_HOUR)
    weekday = session.get(Setting, DEFAULT_WEEKDAY)
    return (
        int((hour.value if hour else DEFAULT_SETTINGS[DEFAULT_HOUR])["hour"]),
        WEEKDAYS.index((weekday.value if weekday else DEFAULT_SETTINGS[DEFAULT_WEEKDAY])["weekday"]),
    )
