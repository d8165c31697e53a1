"""Skill figures: daily counts pre-aggregated from tags, and what a skill page says about them.

    items ⋈ item_skills ──refresh(days)──> skill_daily (skill, UTC day, source)   one row per combination
                                        └─> skill_pair_daily (skill, other, day)  both directions stored
    skill_daily, skill_pair_daily ──skill_figures(today)──> SkillFigures          ~100 rows read, not 1M tags

A page reads the daily tables, never the tag table (except for its ten latest items, which the index on
``item_skills (skill_id, ingested_at)`` answers directly), so it costs the same at a million items as at
a hundred. ``refresh`` rebuilds whole UTC days with ``INSERT … SELECT … GROUP BY`` after deleting them, so
running it twice, or over a day whose items moved, leaves the same rows. Beat runs ``digest.refresh_figures``
over yesterday and today every few minutes; a retag or merge changes older days, which
``digest skills refresh-figures --since DATE`` rebuilds.

Days are UTC days of ``items.ingested_at`` (when we first stored an item, as digest windows use it).
The arithmetic (``summarise``, ``change_between``, ``why_matched``) is pure; the queries only collect its
inputs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, literal, or_, select, text
from sqlalchemy.orm import Session, aliased

from digest.ingest.taxonomy import loaded_version
from digest.models import Item, Setting, Skill, SkillAlias, SkillDaily, SkillPairDaily, Source, Tag
from digest.vocabulary import SOURCE_KINDS

WINDOW_DAYS = 90
# "Last 4 weeks against the 4 weeks before" (issue 8).
PERIOD_DAYS = 28
RECENT_DAYS = 2
TOP_SOURCES = 5
TOP_PAIRS = 10
LATEST_ITEMS = 10
INDEX_PAGE_SIZE = 50
REFRESHED_KEY = "figures-refreshed"
# Any constant: it only has to differ from other advisory locks taken in the same database.
_REFRESH_LOCK = 0x5F16_0008
# SQLAlchemy only promises a row count for UPDATE and DELETE; psycopg's INSERT … SELECT reports -1 without it.
_COUNTED = {"preserve_rowcount": True}


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one ``refresh`` rebuilt: its days and the rows written to each table."""

    since_day: date
    until_day: date
    days: int
    daily_rows: int
    pair_rows: int


@dataclass(frozen=True, slots=True)
class Change:
    """Items in the last 4 weeks against the 4 weeks before, and the same in words."""

    last: int
    prior: int
    # None when the prior period is empty: no percentage of nothing.
    percent: int | None
    words: str


@dataclass(frozen=True, slots=True)
class WeekCount:
    """Items in one week of the window, ``start`` to ``end`` inclusive (the oldest may be shorter)."""

    start: date
    end: date
    items: int


@dataclass(frozen=True, slots=True)
class KindCount:
    """Items from one kind of source (news, blog, paper) and their share of the skill's items."""

    kind: str
    items: int
    share: float


@dataclass(frozen=True, slots=True)
class SourceCount:
    """Items one source published about the skill in the window."""

    name: str
    kind: str
    items: int


@dataclass(frozen=True, slots=True)
class CoSkill:
    """A skill mentioned in the same items, with how many and their share of this skill's items."""

    name: str
    slug: str
    items: int
    share: float


@dataclass(frozen=True, slots=True)
class SkillFigures:
    """What a skill page and ``digest skills stats`` show: every count is over whole UTC days ending
    ``today`` (today so far included), ``window_days`` long.
    """

    skill_id: str
    name: str
    slug: str
    today: date
    window_days: int
    window_start: date
    total: int
    change: Change
    weeks: tuple[WeekCount, ...]
    kinds: tuple[KindCount, ...]
    top_sources: tuple[SourceCount, ...]
    co_skills: tuple[CoSkill, ...]
    # The latest moment the daily tables cover; None before the first refresh.
    as_of: datetime | None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict: dates and times as ISO 8601 strings."""
        data = asdict(self)
        data["today"] = self.today.isoformat()
        data["window_start"] = self.window_start.isoformat()
        data["as_of"] = _iso(self.as_of)
        data["weeks"] = [
            {"start": week.start.isoformat(), "end": week.end.isoformat(), "items": week.items}
            for week in self.weeks
        ]
        return data


@dataclass(frozen=True, slots=True)
class LatestItem:
    """One of a skill's latest items and why it matched."""

    title: str
    url: str | None
    source: str
    kind: str
    ingested_at: datetime
    why: str

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "ingested_at": _iso(self.ingested_at)}


@dataclass(frozen=True, slots=True)
class SkillVolume:
    """A skill on the index page with its items in the window."""

    skill_id: str
    name: str
    slug: str
    items: int


@dataclass(frozen=True, slots=True)
class SkillIndexPage:
    """One page of the skill index: skills by volume, filtered by a search."""

    skills: tuple[SkillVolume, ...]
    query: str
    page: int
    pages: int
    matches: int
    window_days: int
    as_of: datetime | None


# --- refresh ------------------------------------------------------------------------------------------


def recent_days(now: datetime) -> tuple[date, date]:
    """The days the periodic refresh rebuilds: yesterday and today (UTC), so items stored just before
    midnight are counted once the day is over.
    """
    today = now.astimezone(UTC).date()
    return today - timedelta(days=RECENT_DAYS - 1), today


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
    if session.get_bind().dialect.name == "postgresql":
        # Two refreshes of the same day at once would both delete, then both insert the same keys; the
        # second waits here instead (SQLite already lets one writer in at a time).
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
    # One delete per table for the whole range: neither table has an index that starts with the day.
    session.execute(delete(SkillDaily).where(SkillDaily.day.between(since_day, until_day)))
    session.execute(delete(SkillPairDaily).where(SkillPairDaily.day.between(since_day, until_day)))
    daily_rows = pair_rows = 0
    day = since_day
    while day <= until_day:
        daily_rows += _insert_daily(session, day)
        pair_rows += _insert_pairs(session, day)
        if on_day is not None:
            on_day(day)
        day += timedelta(days=1)
    _record_refresh(session, min(now, _start_of(until_day + timedelta(days=1))), now)
    days = (until_day - since_day).days + 1
    return RefreshResult(since_day, until_day, days, daily_rows, pair_rows)


def _insert_daily(session: Session, day: date) -> int:
    start, end = _start_of(day), _start_of(day + timedelta(days=1))
    # The day is a bound literal rather than a date function of ingested_at, which SQLite and PostgreSQL
    # spell differently; the range on items.ingested_at reads its index.
    rows = (
        select(Tag.skill_id, literal(day, SkillDaily.day.type), Item.source_id, func.count())
        .select_from(Item)
        .join(Tag, Tag.item_id == Item.id)
        .where(Item.ingested_at >= start, Item.ingested_at < end)
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
        .where(Item.ingested_at >= start, Item.ingested_at < end)
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
        session.add(Setting(key=REFRESHED_KEY, value={"as_of": _iso(as_of), "generation": 1}, updated_at=now))
        return
    previous = _parse_iso(row.value["as_of"])
    # A rebuild of old days must not move "data as of" backwards, but it did change the tables: the
    # generation tells caches (``VolumeCache``) that every refresh makes their copy old.
    row.value = {"as_of": _iso(max(previous, as_of)), "generation": int(row.value.get("generation", 0)) + 1}
    row.updated_at = now


def data_as_of(session: Session) -> datetime | None:
    """The latest moment the daily tables cover, or None before the first refresh."""
    row = session.get(Setting, REFRESHED_KEY)
    return _parse_iso(row.value["as_of"]) if row else None


def refresh_generation(session: Session) -> int:
    """How many refreshes have changed the daily tables (0 before the first): a cache key."""
    row = session.get(Setting, REFRESHED_KEY)
    return int(row.value.get("generation", 0)) if row else 0


def first_day(session: Session) -> date | None:
    """The UTC day of the first item stored, where a full rebuild starts; None without items."""
    first = session.scalar(select(func.min(Item.ingested_at)))
    return first.astimezone(UTC).date() if first else None


# --- pure arithmetic ----------------------------------------------------------------------------------


def change_between(last: int, prior: int) -> Change:
    """The last 4 weeks against the 4 weeks before, as a rounded percentage and in words.

    "up 12% vs the prior 4 weeks", "down 3% vs the prior 4 weeks", "flat vs the prior 4 weeks" (rounds to
    0 %), "new this period" (nothing before), "no items in either period".
    """
    if prior == 0:
        return Change(last, prior, None, "new this period" if last else "no items in either period")
    percent = _round_half_away((last - prior) * 100 / prior)
    if percent == 0:
        words = "flat vs the prior 4 weeks"
    else:
        words = f"{'up' if percent > 0 else 'down'} {abs(percent)}% vs the prior 4 weeks"
    return Change(last, prior, percent, words)


def _round_half_away(value: float) -> int:
    # Python's round() goes to even (2.5 → 2); people expect 2.5 % to read as 3 %.
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def week_spans(today: date, window_days: int) -> list[tuple[date, date]]:
    """The weeks of the window, oldest first, each ending on the same weekday as ``today``; the oldest is
    cut at the window's start so the weeks add up to the window (90 days: 12 weeks and one of 6 days).
    """
    start = today - timedelta(days=window_days - 1)
    spans = []
    for back in reversed(range(math.ceil(window_days / 7))):
        end = today - timedelta(days=7 * back)
        spans.append((max(start, end - timedelta(days=6)), end))
    return spans


def summarise(
    skill: tuple[str, str, str],
    today: date,
    window_days: int,
    daily: Mapping[date, int],
    sources: Sequence[SourceCount],
    pairs: Sequence[tuple[str, str, int]],
    as_of: datetime | None,
) -> SkillFigures:
    """The figures of one skill (id, name, slug) from its items per day, per source over the window, and
    per co-mentioned skill (name, slug, items) over the window.
    """
    window_start = today - timedelta(days=window_days - 1)

    def between(first: date, last: date) -> int:
        return sum(count for day, count in daily.items() if first <= day <= last)

    total = between(window_start, today)
    period = timedelta(days=PERIOD_DAYS)
    last = between(today - period + timedelta(days=1), today)
    prior = between(today - 2 * period + timedelta(days=1), today - period)
    weeks = tuple(WeekCount(first, end, between(first, end)) for first, end in week_spans(today, window_days))
    by_kind = dict.fromkeys(SOURCE_KINDS, 0)
    for source in sources:
        by_kind[source.kind] = by_kind.get(source.kind, 0) + source.items
    kinds = tuple(KindCount(kind, count, _share(count, total)) for kind, count in by_kind.items())
    top = sorted(sources, key=lambda source: (-source.items, source.name))[:TOP_SOURCES]
    co_skills = tuple(
        CoSkill(name, slug, count, _share(count, total))
        for name, slug, count in sorted(pairs, key=lambda pair: (-pair[2], pair[0]))[:TOP_PAIRS]
    )
    skill_id, name, slug = skill
    return SkillFigures(
        skill_id=skill_id,
        name=name,
        slug=slug,
        today=today,
        window_days=window_days,
        window_start=window_start,
        total=total,
        change=change_between(last, prior),
        weeks=weeks,
        kinds=kinds,
        top_sources=tuple(top),
        co_skills=co_skills,
        as_of=as_of,
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def why_matched(matched: Sequence[str], in_title: bool, count: int) -> str:
    """Why an item carries a skill, from the tag's evidence: where and as what it was mentioned."""
    forms = ", ".join(f"“{form}”" for form in matched) or "an alias"
    times = "once" if count == 1 else f"{count} times"
    return f"{forms} in the title, {times} in all" if in_title else f"{forms} in the text, {times}"


# --- queries ------------------------------------------------------------------------------------------


def skill_figures(
    session: Session, skill_id: str, today: date, window_days: int = WINDOW_DAYS
) -> SkillFigures:
    """The figures of one skill over the ``window_days`` UTC days ending ``today``, from the daily tables.

    Skills merged into this one count too: their rows stay until the days are rebuilt (the merge moved
    their tags here), so before ``refresh-figures`` an item tagged with both is counted twice.
    """
    skill = session.get(Skill, skill_id)
    if skill is None:
        raise ValueError(f"no skill with id {skill_id!r}")
    ids = [skill_id, *session.scalars(select(Skill.id).where(Skill.merged_into == skill_id))]
    window_start = today - timedelta(days=window_days - 1)
    # The change compares 8 weeks, which a short window does not cover.
    first = min(window_start, today - timedelta(days=2 * PERIOD_DAYS - 1))
    daily = {
        day: int(count)
        for day, count in session.execute(
            select(SkillDaily.day, func.sum(SkillDaily.items))
            .where(SkillDaily.skill_id.in_(ids), SkillDaily.day.between(first, today))
            .group_by(SkillDaily.day)
        ).tuples()
    }
    sources = [
        SourceCount(name, kind, int(count))
        for name, kind, count in session.execute(
            select(Source.name, Source.kind, func.sum(SkillDaily.items))
            .join(Source, Source.id == SkillDaily.source_id)
            .where(SkillDaily.skill_id.in_(ids), SkillDaily.day.between(window_start, today))
            .group_by(Source.id, Source.name, Source.kind)
        ).tuples()
    ]
    other = aliased(Skill)
    # A co-mentioned skill that was merged away is shown as the skill it was merged into.
    survivor = func.coalesce(other.merged_into, other.id)
    pair_counts = (
        select(survivor.label("id"), func.sum(SkillPairDaily.items).label("together"))
        .join(other, other.id == SkillPairDaily.other_id)
        .where(
            SkillPairDaily.skill_id.in_(ids),
            SkillPairDaily.day.between(window_start, today),
            survivor.not_in(ids),
        )
        .group_by(survivor)
        .order_by(func.sum(SkillPairDaily.items).desc(), survivor)
        .limit(TOP_PAIRS)
        .subquery()
    )
    pairs = [
        (name, slug, int(count))
        for name, slug, count in session.execute(
            select(Skill.name, Skill.slug, pair_counts.c.together).join(
                pair_counts, pair_counts.c.id == Skill.id
            )
        ).tuples()
    ]
    return summarise(
        (skill.id, skill.name, skill.slug),
        today,
        window_days,
        daily,
        sources,
        pairs,
        data_as_of(session),
    )


def latest_items(session: Session, skill_id: str, limit: int = LATEST_ITEMS) -> list[LatestItem]:
    """The skill's latest items by the time we stored them, each with why it matched."""
    rows = session.execute(
        select(
            Item.title,
            Item.url,
            Source.name,
            Source.kind,
            Tag.ingested_at,
            Tag.matched,
            Tag.in_title,
            Tag.count,
        )
        .select_from(Tag)
        .join(Item, Item.id == Tag.item_id)
        .join(Source, Source.id == Item.source_id)
        .where(Tag.skill_id == skill_id)
        .order_by(Tag.ingested_at.desc(), Tag.item_id.desc())
        .limit(limit)
    ).tuples()
    return [
        LatestItem(title, url, source, kind, ingested_at, why_matched(list(matched), in_title, count))
        for title, url, source, kind, ingested_at, matched, in_title, count in rows
    ]


def skill_volumes(session: Session, today: date, window_days: int = WINDOW_DAYS) -> dict[str, int]:
    """Items per skill (by id) over the window, for skills that have any. Skills merged away count
    towards the skill they were merged into until their days are rebuilt.
    """
    window_start = today - timedelta(days=window_days - 1)
    survivor = func.coalesce(Skill.merged_into, Skill.id)
    rows = session.execute(
        select(survivor, func.sum(SkillDaily.items))
        .join(Skill, Skill.id == SkillDaily.skill_id)
        .where(SkillDaily.day.between(window_start, today))
        .group_by(survivor)
    ).tuples()
    return {skill_id: int(count) for skill_id, count in rows}


class IndexCache:
    """The skill index's ranking (``ranked_skills`` over ``skill_volumes``), kept per process until the
    next refresh, taxonomy edit or day.

    Computed per request, the totals read every row of the window (about 0.2 s at a million items) and
    the ranking builds an object per skill, whose garbage collections cost a tenth of requests 50 ms or
    more (docs/performance.md); yet both change only when a refresh commits or the taxonomy changes. The
    key is read first, so a kept ranking is never older than its key.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, str | None, date, int] | None = None
        self._ranked: tuple[SkillVolume, ...] = ()

    def ranked(
        self, session: Session, today: date, window_days: int = WINDOW_DAYS
    ) -> tuple[SkillVolume, ...]:
        """Every skill by items over the window ending ``today``, computed again after a change."""
        key = (refresh_generation(session), loaded_version(session), today, window_days)
        with self._lock:
            if key == self._key:
                return self._ranked
        ranked = ranked_skills(session, skill_volumes(session, today, window_days))
        with self._lock:
            self._key, self._ranked = key, ranked
        return ranked


def ranked_skills(session: Session, volumes: Mapping[str, int]) -> tuple[SkillVolume, ...]:
    """Every skill not merged away, by ``volumes`` (items in the window, most first), then name."""
    rows = session.execute(select(Skill.id, Skill.name, Skill.slug).where(Skill.merged_into.is_(None)))
    return tuple(
        sorted(
            (SkillVolume(skill_id, name, slug, volumes.get(skill_id, 0)) for skill_id, name, slug in rows),
            key=lambda skill: (-skill.items, skill.name.casefold(), skill.slug),
        )
    )


def skill_index(
    session: Session,
    ranked: Sequence[SkillVolume],
    query: str = "",
    page: int = 1,
    page_size: int = INDEX_PAGE_SIZE,
    window_days: int = WINDOW_DAYS,
) -> SkillIndexPage:
    """One page of ``ranked`` (from ``ranked_skills``); with ``query``, only the skills whose name or an
    alias contains it (case-insensitive).
    """
    folded = " ".join(query.casefold().split())[:100]
    skills = ranked
    if folded:
        pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        aliases = select(SkillAlias.skill_id).where(SkillAlias.folded.like(pattern, escape="\\"))
        found = set(
            session.scalars(
                select(Skill.id).where(
                    or_(func.lower(Skill.name).like(pattern, escape="\\"), Skill.id.in_(aliases))
                )
            )
        )
        skills = [skill for skill in ranked if skill.skill_id in found]
    pages = max(1, math.ceil(len(skills) / page_size))
    page = min(max(1, page), pages)
    shown = tuple(skills[(page - 1) * page_size : page * page_size])
    return SkillIndexPage(shown, query.strip(), page, pages, len(skills), window_days, data_as_of(session))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
