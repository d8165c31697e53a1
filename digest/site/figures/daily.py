"""Rebuilding the daily tables from tags, and how far they reach.

``refresh`` rebuilds whole UTC days with ``INSERT … SELECT … GROUP BY`` after deleting them, in the caller's
transaction; a setting row records the latest moment covered and a generation that caches key on. Items count
on the UTC day they were published (issue 16: a 2019 post found today is not a mention of this quarter).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, insert, literal, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from digest.models import Item, Setting, SkillDaily, SkillPairDaily, Tag
from digest.ops import retention
from digest.records import iso
from digest.site.figures.records import PERIOD_DAYS, WINDOW_DAYS, RefreshResult

RECENT_DAYS = 2
# How far back a publication date can still move a figure: the window plus the 4 weeks its change compares.
REACH_DAYS = WINDOW_DAYS + PERIOD_DAYS
# Items stored a little before the last "as of" may commit after it (a long crawl transaction).
GRACE = timedelta(hours=1)
REFRESHED_KEY = "figures-refreshed"
# Any constant: it only has to differ from other advisory locks taken in the same database.
_REFRESH_LOCK = 0x5F16_0008
# SQLAlchemy only promises a row count for UPDATE and DELETE; psycopg's INSERT … SELECT reports -1 without it.
_COUNTED = {"preserve_rowcount": True}


def recent_days(now: datetime) -> tuple[date, date]:
    """Yesterday and today (UTC), which the periodic refresh always rebuilds, so items stored just before
    midnight are counted once the day is over.
    """
    today = now.astimezone(UTC).date()
    return today - timedelta(days=RECENT_DAYS - 1), today


def periodic_days(session: Session, now: datetime) -> list[date]:
    """The days the periodic refresh rebuilds: yesterday, today, and the UTC days of the publication dates
    of the items stored since the last "as of" (less ``GRACE``) within ``REACH_DAYS``, in order.

    A feed's backlog found today is dated in the past: its days change although nothing was stored on them.
    """
    yesterday, today = recent_days(now)
    reach = _start_of(today - timedelta(days=REACH_DAYS - 1))
    published = select(Item.published_at).where(Item.published_at >= reach).distinct()
    as_of = data_as_of(session)
    if as_of is not None:
        published = published.where(Item.ingested_at >= as_of - GRACE)
    days = {at.astimezone(UTC).date() for at in session.scalars(published)}
    return sorted(days | {yesterday, today})


def refresh(
    session: Session,
    since_day: date,
    until_day: date,
    *,
    now: datetime,
    on_day: Callable[[date], None] | None = None,
) -> RefreshResult:
    """Rebuild ``skill_daily`` and ``skill_pair_daily`` for the UTC days ``since_day`` to ``until_day``
    inclusive, in the caller's transaction, and record how far the figures now reach. Idempotent.

    ``on_day`` is called after each day (a progress bar). Readers keep seeing the previous rows until the
    transaction commits.
    """
    if until_day < since_day:
        raise ValueError(f"refresh from {since_day} to {until_day}: the end is before the start")
    days = [since_day + timedelta(days=n) for n in range((until_day - since_day).days + 1)]
    return _rebuild(session, days, now, on_day, contiguous=True)


def refresh_days(session: Session, days: Collection[date], *, now: datetime) -> RefreshResult:
    """Rebuild the daily tables for ``days`` (not necessarily contiguous, e.g. ``periodic_days``) as
    ``refresh`` does.
    """
    if not days:
        raise ValueError("refresh of no days")
    return _rebuild(session, sorted(set(days)), now, None, contiguous=False)


def _rebuild(
    session: Session,
    days: list[date],
    now: datetime,
    on_day: Callable[[date], None] | None,
    *,
    contiguous: bool,
) -> RefreshResult:
    first, last = days[0], days[-1]
    days = _unpruned(session, days)
    if not days:
        return RefreshResult(first, last, 0, 0, 0)
    if session.get_bind().dialect.name == "postgresql":
        # Two refreshes of the same day at once would both delete, then both insert the same keys; the
        # second waits here instead (SQLite already lets one writer in at a time).
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
    # One delete per table: neither table has an index that starts with the day, and a long rebuild's
    # range is cheaper to say as BETWEEN than as a list of thousands of days.
    session.execute(delete(SkillDaily).where(_on_days(SkillDaily.day, days, contiguous=contiguous)))
    session.execute(delete(SkillPairDaily).where(_on_days(SkillPairDaily.day, days, contiguous=contiguous)))
    daily_rows = pair_rows = 0
    for day in days:
        daily_rows += _insert_daily(session, day)
        pair_rows += _insert_pairs(session, day)
        if on_day is not None:
            on_day(day)
    _record_refresh(session, min(now, _start_of(last + timedelta(days=1))), now)
    return RefreshResult(first, last, len(days), daily_rows, pair_rows)


def _unpruned(session: Session, days: list[date]) -> list[date]:
    """``days`` less those retention may have taken items from (issue 19): the daily tables outlive the
    items they count, so such a day keeps the rows it has rather than being rebuilt from what is left. Items
    published on a day were first stored on it or later, so only days up to the horizon's are at risk."""
    horizon = retention.items_pruned_before(session)
    if horizon is None:
        return days
    return [day for day in days if day > horizon.date()]


def _on_days(
    column: InstrumentedAttribute[date], days: list[date], *, contiguous: bool
) -> ColumnElement[bool]:
    return column.between(days[0], days[-1]) if contiguous else column.in_(days)


def _insert_daily(session: Session, day: date) -> int:
    start, end = _start_of(day), _start_of(day + timedelta(days=1))
    # The day is a bound literal rather than a date function of published_at, which SQLite and PostgreSQL
    # spell differently; the range on items.published_at reads its index (migration 0010).
    rows = (
        select(Tag.skill_id, literal(day, SkillDaily.day.type), Item.source_id, func.count())
        .select_from(Item)
        .join(Tag, Tag.item_id == Item.id)
        .where(Item.published_at >= start, Item.published_at < end)
        .group_by(Tag.skill_id, Item.source_id)
    )
    inserted = session.execute(
        insert(SkillDaily).from_select(["skill_id", "day", "source_id", "items"], rows),
        execution_options=_COUNTED,
    )
    return int(cast(CursorResult[Any], inserted).rowcount)


def _insert_pairs(session: Session, day: date) -> int:
    start, end = _start_of(day), _start_of(day + timedelta(days=1))
    one, other = aliased(Tag), aliased(Tag)
    rows = (
        select(one.skill_id, other.skill_id, literal(day, SkillPairDaily.day.type), func.count())
        .select_from(Item)
        .join(one, one.item_id == Item.id)
        .join(other, (other.item_id == Item.id) & (other.skill_id != one.skill_id))
        .where(Item.published_at >= start, Item.published_at < end)
        .group_by(one.skill_id, other.skill_id)
    )
    inserted = session.execute(
        insert(SkillPairDaily).from_select(["skill_id", "other_id", "day", "items"], rows),
        execution_options=_COUNTED,
    )
    return int(cast(CursorResult[Any], inserted).rowcount)


def _record_refresh(session: Session, as_of: datetime, now: datetime) -> None:
    row = session.get(Setting, REFRESHED_KEY)
    if row is None:
        session.add(Setting(key=REFRESHED_KEY, value={"as_of": iso(as_of), "generation": 1}, updated_at=now))
        return
    previous = _parse_iso(row.value["as_of"])
    # A rebuild of old days must not move "data as of" backwards, but it did change the tables: the
    # generation tells caches (``ranking.IndexCache``) that every refresh makes their copy old.
    row.value = {"as_of": iso(max(previous, as_of)), "generation": int(row.value.get("generation", 0)) + 1}
    row.updated_at = now


def data_as_of(session: Session) -> datetime | None:
    """The latest moment the daily tables cover, or None before the first refresh."""
    row = session.get(Setting, REFRESHED_KEY)
    return _parse_iso(row.value["as_of"]) if row else None


def refresh_generation(session: Session) -> int:
    """How many refreshes have changed the daily tables (0 before the first): a cache key."""
    row = session.get(Setting, REFRESHED_KEY)
    return int(row.value.get("generation", 0)) if row else 0


def first_day(session: Session, today: date) -> date | None:
    """The UTC day of the first publication within ``REACH_DAYS`` of ``today``, where a full rebuild starts;
    None without such items. Older days move no figure.
    """
    reach = _start_of(today - timedelta(days=REACH_DAYS - 1))
    first = session.scalar(select(func.min(Item.published_at)).where(Item.published_at >= reach))
    return first.astimezone(UTC).date() if first else None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
