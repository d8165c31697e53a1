"""The pure arithmetic of a skill's figures: sums over days, the change between periods, weeks, words."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from digest.site.figures.records import (
    PERIOD_DAYS,
    TOP_PAIRS,
    TOP_SOURCES,
    Change,
    CoSkill,
    KindCount,
    SkillFigures,
    SourceCount,
    WeekCount,
)
from digest.vocabulary import SOURCE_KINDS


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


def rise_between(recent: int, baseline: float) -> tuple[int | None, str]:
    """The last 7 days against the weekly average of the 4 weeks before, as a rounded percentage (None
    when that average is 0) and in words: "up 120% on the 4 weeks before", "new: none in the 4 weeks
    before", "flat on the 4 weeks before", "down 40% on the 4 weeks before".
    """
    if baseline == 0:
        return None, "new: none in the 4 weeks before" if recent else "none in either period"
    percent = _round_half_away((recent - baseline) * 100 / baseline)
    if percent == 0:
        return 0, "flat on the 4 weeks before"
    return percent, f"{'up' if percent > 0 else 'down'} {abs(percent)}% on the 4 weeks before"


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
