"""A skill's trend: its mentions in the last 24 hours or 7 days against the 4 weeks before, and whether an
alert with a threshold and a minimum count fires on it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import Item, Skill, Tag
from digest.records import AlertFigures

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
BASELINE = timedelta(weeks=4)
# Bars in the email's chart: days for a 24-hour alert, weeks for a 7-day one (the baseline and now).
CHART_BARS = {"24h": 29, "7d": 5}


@dataclass(frozen=True, slots=True)
class Trend:
    """A skill's mentions in the recent period against its baseline."""

    skill_id: str
    skill_name: str
    skill_slug: str
    period: str
    recent: int
    # Average count per period over the 4 weeks before the recent period.
    baseline: float
    # Percent change, or None when the baseline is 0.
    change: float | None
    # Counts per bar, oldest first, the last bar being the recent period.
    bars: tuple[int, ...]
    start: datetime
    end: datetime

    @property
    def words(self) -> str:
        """The change in words: "up 120% vs the prior 4 weeks", "new", "flat"."""
        if self.change is None:
            return "new: no mentions in the prior 4 weeks" if self.recent else "no mentions"
        rounded = round(self.change)
        if rounded == 0:
            return "flat vs the prior 4 weeks"
        return f"{'up' if rounded > 0 else 'down'} {abs(rounded)}% vs the prior 4 weeks"

    def figures(self, threshold: int) -> AlertFigures:
        """What an alert's manifest keeps of this trend, with the alert's threshold."""
        return AlertFigures(**asdict(self), words=self.words, threshold=threshold)


def fires(trend: Trend, threshold: int, min_count: int) -> bool:
    """Whether a trend passes an alert's threshold (either way) with enough mentions to mean something."""
    if max(trend.recent, trend.baseline) < min_count:
        return False
    if trend.change is None:
        return trend.recent >= min_count
    return abs(trend.change) >= threshold


def measure(session: Session, skill: Skill, period: str, now: datetime) -> Trend:
    """The trend of ``skill`` over ``period`` ending at ``now``, by publication date (issue 16)."""
    span = PERIODS[period]
    end, start = now, now - span
    base_start = start - BASELINE
    bar = timedelta(days=1) if period == "24h" else timedelta(days=7)
    bars = CHART_BARS[period]
    first = end - bar * bars
    lower = min(first, base_start)
    # Nothing is published after it is first stored, so the storage time bounds the tag index's range.
    rows = session.scalars(
        select(Item.published_at)
        .join(Tag, Tag.item_id == Item.id)
        .where(Tag.skill_id == skill.id, Tag.ingested_at >= lower)
        .where(Item.published_at >= lower, Item.published_at < end)
    )
    recent = baseline_total = 0
    counts = [0] * bars
    for published in rows:
        if published >= start:
            recent += 1
        elif published >= base_start:
            baseline_total += 1
        if published >= first:
            counts[min(bars - 1, int((published - first) / bar))] += 1
    baseline = baseline_total * (span / BASELINE)
    change = (recent - baseline) / baseline * 100 if baseline else None
    return Trend(
        skill.id, skill.name, skill.slug, period, recent, baseline, change, tuple(counts), start, end
    )
