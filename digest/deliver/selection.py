"""The items of a window, ranked and grouped by skill. Read-only but for a short-lived cache.

Rank (``rank``, pure): each candidate's worth is its match strength (the tag's score: title beats body,
more mentions beat fewer) plus its freshness within the window; a story seen in several feeds or under
several skills appears once, under the skill where it is strongest. The digest is then picked greedily:
each pick costs the candidates from the same source and of the same kind (news, blog, paper) a little,
so the top of a digest mixes sources and kinds unless one of them is much better. The cap keeps the best
and counts the rest per skill ("+N more" links to the skill page).

Many subscribers share a slot (08:00 in one time zone, the top of every hour), so the rows of one skill's
window are read once per process and kept for a minute (``WindowCache``): one query per digest at most,
whatever the number of items.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from digest.models import Item, Skill, Source, Tag
from digest.records import DigestSection, ItemForDigest

# How much freshness weighs against match strength (both 0..1): a title mention from the start of the
# window still beats a body mention from its end.
FRESHNESS_WEIGHT = 0.3
# What each earlier pick from the same source, or of the same kind, takes off a candidate's worth.
SOURCE_PENALTY = 0.15
KIND_PENALTY = 0.06
CACHE_SIZE = 1024
CACHE_TTL = timedelta(seconds=60)

# What an item in a digest shows, beside the four columns of its tag (or manifest entry): skill_id,
# matched, in_title, score. The item's source and the skill's name and slug come along. Read by label
# (``item_from_row``).
ITEM_COLUMNS = (
    Item.id.label("item_id"),
    Item.title,
    Item.url,
    Item.summary,
    Item.published_at,
    Item.ingested_at,
    Source.name.label("source_name"),
    Source.kind.label("source_kind"),
    Skill.name.label("skill_name"),
    Skill.slug.label("skill_slug"),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A tagged item of a window, as the ranking sees it."""

    item: ItemForDigest
    story_key: str
    skill_name: str
    skill_slug: str
    # Match strength plus freshness in its window, computed once when read (and cached with it).
    worth: float


@dataclass(frozen=True, slots=True)
class Selection:
    """The sections of a digest and how many items the cap left out."""

    sections: tuple[DigestSection, ...]
    more: int


class WindowCache:
    """The candidates of one skill's window, kept for ``ttl`` so the subscribers of one slot share a read.

    A window is closed when its digests are sent (dispatch waits for the matcher to catch up), so its rows
    change only by a re-tag or a deletion; the short ``ttl`` bounds how long a digest can miss either.
    """

    def __init__(self, size: int = CACHE_SIZE, ttl: timedelta = CACHE_TTL) -> None:
        self.size, self.ttl = size, ttl
        self._entries: OrderedDict[tuple[str, datetime, datetime], tuple[datetime, list[Candidate]]] = (
            OrderedDict()
        )
        self.queries = 0

    def candidates(
        self, session: Session, skill_ids: Sequence[str], start: datetime, end: datetime, now: datetime
    ) -> list[Candidate]:
        """The candidates of ``skill_ids`` in ``[start, end)``, reading the database only for skills not
        cached (one query)."""
        found: list[Candidate] = []
        missing: list[str] = []
        for skill_id in skill_ids:
            entry = self._entries.get((skill_id, start, end))
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end((skill_id, start, end))
                found += entry[1]
            else:
                missing.append(skill_id)
        if missing:
            self.queries += 1
            read = read_candidates(session, missing, start, end)
            for skill_id in missing:
                rows = [candidate for candidate in read if candidate.item.skill_id == skill_id]
                self._entries[(skill_id, start, end)] = (now, rows)
                self._entries.move_to_end((skill_id, start, end))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            found += read
        return found


def read_candidates(
    session: Session, skill_ids: Sequence[str], start: datetime, end: datetime
) -> list[Candidate]:
    """Items tagged with any of ``skill_ids`` and ingested in ``[start, end)``: one query, columns only."""
    rows = session.execute(
        select(Tag.skill_id, Tag.matched, Tag.in_title, Tag.score, *ITEM_COLUMNS, Item.story_key)
        .join(Item, Item.id == Tag.item_id)
        .join(Source, Source.id == Item.source_id)
        .join(Skill, Skill.id == Tag.skill_id)
        .where(Tag.skill_id.in_(list(skill_ids)), Tag.ingested_at >= start, Tag.ingested_at < end)
    ).all()
    span = max((end - start).total_seconds(), 1.0)
    candidates = []
    for row in rows:
        item, skill_name, skill_slug = item_from_row(row)
        worth = item.score + FRESHNESS_WEIGHT * _freshness(item, end, span)
        candidates.append(Candidate(item, row.story_key, skill_name, skill_slug, worth))
    return candidates


def item_from_row(row: Row[Any]) -> tuple[ItemForDigest, str, str]:
    """The item of a row holding skill_id, matched, in_title, score and ``ITEM_COLUMNS``, with its skill's
    name and slug."""
    item = ItemForDigest(
        item_id=row.item_id,
        title=row.title,
        url=row.url,
        summary=row.summary,
        source_name=row.source_name,
        source_kind=row.source_kind,
        published_at=row.published_at,
        ingested_at=row.ingested_at,
        skill_id=row.skill_id,
        matched=tuple(row.matched),
        in_title=row.in_title,
        score=row.score,
    )
    return item, row.skill_name, row.skill_slug


def select_window(
    session: Session,
    skill_ids: Sequence[str],
    start: datetime,
    end: datetime,
    cap: int,
    *,
    cache: WindowCache | None = None,
    now: datetime | None = None,
) -> Selection:
    """Items tagged with any of ``skill_ids`` and ingested in ``[start, end)``, ranked and capped."""
    if cache is not None and now is not None:
        candidates = cache.candidates(session, skill_ids, start, end, now)
    else:
        candidates = read_candidates(session, skill_ids, start, end)
    return choose(candidates, cap)


def choose(candidates: Sequence[Candidate], cap: int) -> Selection:
    """The sections of a digest from the candidates of its window: ranked, one entry per story, capped."""
    shown, unshown = rank(candidates, cap)
    names = {
        candidate.item.skill_id: (candidate.skill_name, candidate.skill_slug) for candidate in candidates
    }
    grouped: dict[str, list[ItemForDigest]] = {}
    for item in shown:
        grouped.setdefault(item.skill_id, []).append(item)
    more: dict[str, int] = {}
    for item in unshown:
        more[item.skill_id] = more.get(item.skill_id, 0) + 1
    sections = tuple(
        DigestSection(skill_id, *names[skill_id], tuple(items), more.get(skill_id, 0))
        for skill_id, items in grouped.items()
    )
    return Selection(sections=sections, more=len(unshown))


def rank(candidates: Sequence[Candidate], cap: int) -> tuple[list[ItemForDigest], list[ItemForDigest]]:
    """The best ``cap`` items in the order to show them, and the rest (each story once)."""
    best: dict[str, tuple[float, ItemForDigest]] = {}
    for candidate in candidates:
        item, worth = candidate.item, candidate.worth
        kept = best.get(candidate.story_key)
        if kept is None or worth > kept[0] or (worth == kept[0] and _before(item, kept[1])):
            best[candidate.story_key] = (worth, item)
    # Heap of (-worth at the time it was computed, tie-breakers, item); penalties only ever lower a worth,
    # so a popped entry whose recomputed worth still beats the next one is the true best (lazy greedy).
    heap = [(-worth, -item.in_title, item.item_id, worth, item) for worth, item in best.values()]
    heapq.heapify(heap)
    per_source: dict[str, int] = {}
    per_kind: dict[str, int] = {}
    shown: list[ItemForDigest] = []
    while heap and len(shown) < cap:
        _, in_title, item_id, base, item = heapq.heappop(heap)
        worth = (
            base
            - SOURCE_PENALTY * per_source.get(item.source_name, 0)
            - KIND_PENALTY * per_kind.get(item.source_kind, 0)
        )
        if heap and -heap[0][0] > worth:
            heapq.heappush(heap, (-worth, in_title, item_id, base, item))
            continue
        shown.append(item)
        per_source[item.source_name] = per_source.get(item.source_name, 0) + 1
        per_kind[item.source_kind] = per_kind.get(item.source_kind, 0) + 1
    return shown, [entry[4] for entry in heap]


def _before(item: ItemForDigest, other: ItemForDigest) -> bool:
    """Of two equally worthy entries of one story, a title mention first, then the older item."""
    return (item.in_title, -item.item_id) > (other.in_title, -other.item_id)


def _freshness(item: ItemForDigest, end: datetime, span: float) -> float:
    """1 for an item from the end of the window, 0 for one from its start or older.

    The feed's own date counts only when it is earlier than when we found the item: feeds' dates lie
    forward (scheduled posts, wrong time zones) more than they matter backward.
    """
    when = min(item.published_at, item.ingested_at) if item.published_at else item.ingested_at
    return min(1.0, max(0.0, 1.0 - (end - when).total_seconds() / span))
