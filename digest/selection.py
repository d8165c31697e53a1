"""The items of a window, ranked and grouped by skill. Read-only.

Rank: match strength first (title beats body, more mentions beat fewer), then freshness; a story seen in
several feeds or under several skills appears once, in its best section; no source takes more than its
share at the top; the cap keeps the best and counts the rest as "+N more".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import Item, Skill, Source, Tag
from digest.records import DigestSection, ItemForDigest

MAX_PER_SOURCE_AT_TOP = 3


@dataclass(frozen=True, slots=True)
class Selection:
    """The sections of a digest and how many items the cap left out."""

    sections: tuple[DigestSection, ...]
    more: int


def select_window(
    session: Session, skill_ids: Sequence[str], start: datetime, end: datetime, cap: int
) -> Selection:
    """Items tagged with any of ``skill_ids`` and ingested in ``[start, end)``, ranked and capped."""
    rows = session.execute(
        select(Tag, Item, Source.name, Source.kind)
        .join(Item, Item.id == Tag.item_id)
        .join(Source, Source.id == Item.source_id)
        .where(Tag.skill_id.in_(list(skill_ids)), Tag.ingested_at >= start, Tag.ingested_at < end)
    ).all()
    candidates = [
        item_for_digest(item, source_name, source_kind, tag.skill_id, tag.matched, tag.in_title, tag.score)
        for tag, item, source_name, source_kind in rows
    ]
    story = {item.id: item.story_key for _, item, _, _ in rows}
    ranked = rank(candidates, story)
    shown = ranked[:cap]
    return Selection(sections=_sections(session, shown, skill_ids), more=len(ranked) - len(shown))


def item_for_digest(
    item: Item,
    source_name: str,
    source_kind: str,
    skill_id: str,
    matched: Sequence[str],
    in_title: bool,
    score: float,
) -> ItemForDigest:
    """The record of a stored item as a digest shows it, with why it is there."""
    return ItemForDigest(
        item_id=item.id,
        title=item.title,
        url=item.url,
        summary=item.summary,
        source_name=source_name,
        source_kind=source_kind,
        published_at=item.published_at,
        ingested_at=item.ingested_at,
        skill_id=skill_id,
        matched=tuple(matched),
        in_title=in_title,
        score=score,
    )


def rank(candidates: Sequence[ItemForDigest], story: dict[int, str]) -> list[ItemForDigest]:
    """Best first, one entry per story, and no source crowding the top."""
    ordered = sorted(candidates, key=_strength, reverse=True)
    best: dict[str, ItemForDigest] = {}
    for candidate in ordered:
        best.setdefault(story.get(candidate.item_id, str(candidate.item_id)), candidate)
    unique = list(best.values())
    top: list[ItemForDigest] = []
    rest: list[ItemForDigest] = []
    per_source: dict[str, int] = {}
    for candidate in unique:
        seen = per_source.get(candidate.source_name, 0)
        (top if seen < MAX_PER_SOURCE_AT_TOP else rest).append(candidate)
        per_source[candidate.source_name] = seen + 1
    return top + rest


def _strength(item: ItemForDigest) -> tuple[float, bool, datetime]:
    return (item.score, item.in_title, item.published_at or item.ingested_at)


def _sections(
    session: Session, shown: list[ItemForDigest], skill_ids: Sequence[str]
) -> tuple[DigestSection, ...]:
    skills = {
        skill.id: skill for skill in session.scalars(select(Skill).where(Skill.id.in_(list(skill_ids))))
    }
    grouped: dict[str, list[ItemForDigest]] = {}
    for item in shown:
        grouped.setdefault(item.skill_id, []).append(item)
    return tuple(
        DigestSection(skill_id, skills[skill_id].name, skills[skill_id].slug, tuple(items))
        for skill_id, items in grouped.items()
    )
