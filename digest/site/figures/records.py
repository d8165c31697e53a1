"""The frozen records the figures pass between stages, and the windows they cover."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from digest.records import OtherCopy, iso

WINDOW_DAYS = 90
# "Last 4 weeks against the 4 weeks before" (issue 8).
PERIOD_DAYS = 28
TOP_SOURCES = 5
TOP_PAIRS = 10
LATEST_ITEMS = 10
# How many times LATEST_ITEMS rows are read to fold copies of one story into one entry (issue 16).
FOLD_DEPTH = 3
INDEX_PAGE_SIZE = 50
# The home page's rising skills (issue 17): the last 7 days against the weekly average of the 4 weeks
# before, the comparison a 7-day trend alert makes.
RECENT_DAYS = 7
BASELINE_DAYS = 28


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
        data["as_of"] = iso(self.as_of)
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
    published_at: datetime
    ingested_at: datetime
    why: str
    # The story's copies in other sources ("also in N sources", issue 16).
    also: tuple[OtherCopy, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            **asdict(self),
            "published_at": iso(self.published_at),
            "ingested_at": iso(self.ingested_at),
            "also": [{"source": copy.source_name, "url": copy.url} for copy in self.also],
        }


@dataclass(frozen=True, slots=True)
class SkillVolume:
    """A skill on the index page with its items in the window."""

    skill_id: str
    name: str
    slug: str
    items: int


@dataclass(frozen=True, slots=True)
class Rise:
    """A skill on the home page's "rising" list: its items in the last 7 days against its weekly average
    over the 4 weeks before."""

    skill_id: str
    name: str
    slug: str
    recent: int
    # Items per 7 days over the 28 days before the recent ones.
    baseline: float
    # None when the baseline is 0: no percentage of nothing.
    percent: int | None
    words: str


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
