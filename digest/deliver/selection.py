"""The items of a window, ranked and grouped by skill. Read-only but for a short-lived cache.

Fresh means fresh (issue 16): an item belongs to the window ``[start, end)`` when we first stored it in
the window *and* it was published no earlier than ``start - max_age``. A new feed's backlog, an arXiv
query's years of papers or an old post re-published are stored, tagged and shown on skill pages, but never
mailed as new. The store already turned a missing or future publication date into the time the item was
first seen, so such an item is as fresh as its arrival.

Rank (``rank``, pure): each candidate's worth is its match strength (the tag's score: title beats body,
more mentions beat fewer) plus its freshness within the window; a story seen in several feeds or under
several skills appears once, under the skill where it is strongest (also when told under different URLs:
near-duplicate titles and leads, ``ingest.dedupe``), and lists its copies in other sources ("also in N
sources", ``ItemForDigest.also``; the manifest keeps them, so a replay shows what was sent). The digest
is then picked greedily: each pick costs the candidates from the same source and of the same kind (news,
blog, paper) a little, so the top of a digest mixes sources and kinds unless one of them is much better.
The cap keeps the best and counts the rest per skill ("+N more" links to the skill page).

Many subscribers share a slot (08:00 in one time zone, the top of every hour), so the rows of one skill's
window are read once per process and kept for a minute (``WindowCache``): one query per digest at most,
whatever the number of items.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from digest.ingest.dedupe import Fingerprint, clusters, fingerprint
from digest.models import DeliveryItem, Item, Skill, Source, Tag
from digest.records import DigestSection, ItemForDigest, OtherCopy

# How much freshness weighs against match strength (both 0..1): a title mention from the start of the
# window still beats a body mention from its end.
FRESHNESS_WEIGHT = 0.3
# What each earlier pick from the same source, or of the same kind, takes off a candidate's worth.
SOURCE_PENALTY = 0.15
KIND_PENALTY = 0.06
CACHE_SIZE = 1024
CACHE_TTL = timedelta(seconds=60)
# DIGEST_MAX_ITEM_AGE's default: a weekly digest may still carry what was published the week before it.
MAX_ITEM_AGE = timedelta(days=7)

# What an item in a digest shows, beside the four columns of its tag (or manifest entry): skill_id,
# matched, in_title, score. The item's source, the skill's name and slug and the item's discussion link
# come along. Read by label (``item_from_row``).
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
    Item.discussion_url,
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
    # What near-duplicate folding compares (issue 16), computed once when read (and cached with it).
    fingerprint: Fingerprint


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
        self._entries: OrderedDict[
            tuple[str, datetime, datetime, timedelta], tuple[datetime, list[Candidate]]
        ] = OrderedDict()
        self.queries = 0

    def candidates(
        self,
        session: Session,
        skill_ids: Sequence[str],
        start: datetime,
        end: datetime,
        now: datetime,
        max_age: timedelta = MAX_ITEM_AGE,
    ) -> list[Candidate]:
        """The candidates of ``skill_ids`` in ``[start, end)``, reading the database only for skills not
        cached (one query)."""
        found: list[Candidate] = []
        missing: list[str] = []
        for skill_id in skill_ids:
            entry = self._entries.get((skill_id, start, end, max_age))
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end((skill_id, start, end, max_age))
                found += entry[1]
            else:
                missing.append(skill_id)
        if missing:
            self.queries += 1
            read = read_candidates(session, missing, start, end, max_age)
            for skill_id in missing:
                rows = [candidate for candidate in read if candidate.item.skill_id == skill_id]
                self._entries[(skill_id, start, end, max_age)] = (now, rows)
                self._entries.move_to_end((skill_id, start, end, max_age))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            found += read
        return found


def read_candidates(
    session: Session,
    skill_ids: Sequence[str],
    start: datetime,
    end: datetime,
    max_age: timedelta = MAX_ITEM_AGE,
) -> list[Candidate]:
    """Items tagged with any of ``skill_ids``, first stored in ``[start, end)`` and published no earlier
    than ``start - max_age``: one query, columns only."""
    rows = session.execute(
        select(Tag.skill_id, Tag.matched, Tag.in_title, Tag.score, *ITEM_COLUMNS, Item.story_key)
        .join(Item, Item.id == Tag.item_id)
        .join(Source, Source.id == Item.source_id)
        .join(Skill, Skill.id == Tag.skill_id)
        .where(
            Tag.skill_id.in_(list(skill_ids)),
            Tag.ingested_at >= start,
            Tag.ingested_at < end,
            Item.published_at >= fresh_since(start, max_age),
        )
    ).all()
    span = max((end - start).total_seconds(), 1.0)
    candidates = []
    for row in rows:
        item, skill_name, skill_slug = item_from_row(row)
        worth = item.score + FRESHNESS_WEIGHT * _freshness(item, end, span)
        print_ = fingerprint(item.title, item.summary, item.published_at or item.ingested_at)
        candidates.append(Candidate(item, row.story_key, skill_name, skill_slug, worth, print_))
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
        discussion_url=row.discussion_url,
    )
    return item, row.skill_name, row.skill_slug


def manifest_select(delivery_id: int, *columns: Any) -> Select[Any]:
    """``columns`` of the items a delivery carried (its manifest, with each item's source and skill joined),
    in the order they were sent: what a replay re-renders and what the history shows."""
    return (
        select(*columns)
        .select_from(DeliveryItem)
        .join(Item, Item.id == DeliveryItem.item_id)
        .join(Source, Source.id == Item.source_id)
        .join(Skill, Skill.id == DeliveryItem.skill_id)
        .where(DeliveryItem.delivery_id == delivery_id)
        .order_by(DeliveryItem.position)
    )


def select_window(
    session: Session,
    skill_ids: Sequence[str],
    start: datetime,
    end: datetime,
    cap: int,
    *,
    cache: WindowCache | None = None,
    now: datetime | None = None,
    max_age: timedelta = MAX_ITEM_AGE,
) -> Selection:
    """The fresh items of ``skill_ids`` in ``[start, end)`` (``read_candidates``), ranked and capped."""
    if cache is not None and now is not None:
        candidates = cache.candidates(session, skill_ids, start, end, now, max_age)
    else:
        candidates = read_candidates(session, skill_ids, start, end, max_age)
    return choose(candidates, cap)


def fresh_since(start: datetime, max_age: timedelta) -> datetime:
    """The earliest publication time an item of the window starting at ``start`` may have."""
    return start - max_age


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
    """The best ``cap`` items in the order to show them, and the rest (each story once: copies under one
    canonical URL share a story key, and near-duplicates under different URLs are folded, ``dedupe``)."""
    story_of = clusters({candidate.story_key: candidate.fingerprint for candidate in candidates})
    best: dict[str, tuple[float, ItemForDigest]] = {}
    copies: dict[str, dict[int, ItemForDigest]] = {}
    for candidate in candidates:
        item, worth, story = candidate.item, candidate.worth, story_of[candidate.story_key]
        copies.setdefault(story, {})[item.item_id] = item
        kept = best.get(story)
        if kept is None or worth > kept[0] or (worth == kept[0] and _before(item, kept[1])):
            best[story] = (worth, item)
    best = {story: (worth, _with_copies(item, copies[story])) for story, (worth, item) in best.items()}
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


def _with_copies(item: ItemForDigest, copies: dict[int, ItemForDigest]) -> ItemForDigest:
    """``item`` with the story's copies in other sources ("also in N sources", issue 16): one per source,
    the first stored, in the order they were stored. A second copy in the item's own source says nothing."""
    also: dict[str, OtherCopy] = {}
    for item_id in sorted(copies):
        copy = copies[item_id]
        if copy.source_name != item.source_name and copy.source_name not in also:
            also[copy.source_name] = OtherCopy(item_id, copy.source_name, copy.url)
    return replace(item, also=tuple(also.values())) if also else item


def _before(item: ItemForDigest, other: ItemForDigest) -> bool:
    """Of two equally worthy entries of one story, a title mention first, then the older item."""
    return (item.in_title, -item.item_id) > (other.in_title, -other.item_id)


def _freshness(item: ItemForDigest, end: datetime, span: float) -> float:
    """1 for an item published at the end of the window, 0 for one published at its start or earlier.

    Freshness is by publication time (issue 16): an old post found late is not news. The feed's own date
    counts only when it is earlier than when we found the item: feeds' dates lie forward (scheduled
    posts, wrong time zones) more than they matter backward.
    """
    when = min(item.published_at, item.ingested_at) if item.published_at else item.ingested_at
    return min(1.0, max(0.0, 1.0 - (end - when).total_seconds() / span))
