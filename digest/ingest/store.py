"""Persistence of the ingest wing: upsert items, write tags, record each fetch's outcome."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from digest.ingest.parse import story_key
from digest.models import Item, Source, Tag
from digest.records import ParsedEntry, TagMatch

# An item the matcher has not tagged within this time no longer holds readers back (it is stuck, and
# ``digest taxonomy retag`` will reach it).
TAG_GRACE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item that was added or changed."""

    id: int
    is_new: bool


def upsert_entries(
    session: Session, source_id: int, entries: Sequence[ParsedEntry], now: datetime
) -> list[StoredItem]:
    """Insert new entries and update changed ones; unchanged entries are left alone.

    An entry is identified by (source, entry key), so a refetch never doubles it (a folded link to an
    article stored from another feed, ``_fold_discussions``, is not stored at all); ``ingested_at`` is set
    once, when it is first seen, because digest windows are defined on it. Rows are written in bulk
    (one INSERT ... RETURNING, one UPDATE by primary key), not object by object: a crawl stores tens of
    thousands of items.
    """
    keys = [entry.entry_key for entry in entries]
    existing = {
        key: (item_id, content_hash, published)
        for item_id, key, content_hash, published in session.execute(
            select(Item.id, Item.entry_key, Item.content_hash, Item.published_at).where(
                Item.source_id == source_id, Item.entry_key.in_(keys)
            )
        )
    }
    new_rows, changed_rows = [], []
    for entry in entries:
        digest = _content_hash(entry)
        known = existing.get(entry.entry_key)
        if known is None:
            new_rows.append(_new_row(source_id, entry, digest, now))
        elif known[1] != digest:
            changed_rows.append({"id": known[0], **_row(entry, digest, now, known[2])})
    new_rows = _fold_discussions(session, source_id, new_rows)
    stored = []
    if new_rows:
        inserted = session.scalars(insert(Item).returning(Item.id, sort_by_parameter_order=True), new_rows)
        stored += [StoredItem(item_id, is_new=True) for item_id in inserted]
    if changed_rows:
        session.execute(update(Item), changed_rows)
        stored += [StoredItem(row["id"], is_new=False) for row in changed_rows]
    return stored


def _fold_discussions(session: Session, source_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The new rows left once each link to an article already stored from another feed (an aggregator's:
    it has a discussion elsewhere, such as a Hacker News item) is folded into that article: the article
    keeps its own text and gains the discussion link (issue 16). One item per story, not a copy per feed.
    """
    linked = {row["story_key"]: row for row in rows if row["discussion_url"]}
    if not linked:
        return rows
    stored = session.execute(
        select(Item.id, Item.story_key, Item.discussion_url).where(
            Item.story_key.in_(list(linked)), Item.source_id != source_id
        )
    ).all()
    folded = {}
    for item_id, key, discussion in stored:
        folded[key] = linked[key]
        if discussion is None:
            session.execute(
                update(Item).where(Item.id == item_id).values(discussion_url=linked[key]["discussion_url"])
            )
    return [row for row in rows if row["story_key"] not in folded or not row["discussion_url"]]


def replace_tags(
    session: Session, tags_by_item: dict[int, list[TagMatch]], ingested: dict[int, datetime], version: str
) -> int:
    """Store the tags of freshly (re)matched items, replacing any they had. Returns the number written."""
    if not tags_by_item:
        return 0
    session.execute(delete(Tag).where(Tag.item_id.in_(list(tags_by_item))))
    rows = [
        Tag(
            item_id=item_id,
            skill_id=match.skill_id,
            ingested_at=ingested[item_id],
            matched=list(match.matched),
            count=match.count,
            in_title=match.in_title,
            score=match.score,
        )
        for item_id, matches in tags_by_item.items()
        for match in matches
    ]
    session.add_all(rows)
    for item in session.scalars(select(Item).where(Item.id.in_(list(tags_by_item)))):
        item.tagged_version = version
    return len(rows)


def success_values(now: datetime, next_fetch_at: datetime, **changes: Any) -> dict[str, Any]:
    """The columns of a fetch that worked: the failure count starts again. ``changes`` are further columns
    (status, validators, warning, body hash, a moved URL)."""
    return {
        "last_error": None,
        "consecutive_failures": 0,
        "last_fetched_at": now,
        "next_fetch_at": next_fetch_at,
        **changes,
    }


def failure_values(
    *,
    failures: int,
    error: str,
    http_status: int | None,
    now: datetime,
    next_fetch_at: datetime,
    disable_reason: str | None,
) -> dict[str, Any]:
    """The columns of a failed fetch (``failures`` in a row now); ``disable_reason`` stops crawling the
    source and says why. The count is a value, not ``+ 1`` in SQL: the source is claimed by this fetch."""
    values: dict[str, Any] = {
        "last_status": "error",
        "last_http_status": http_status,
        "last_error": error,
        "consecutive_failures": failures,
        "last_fetched_at": now,
        "next_fetch_at": next_fetch_at,
    }
    if disable_reason:
        values |= {"state": "disabled", "disabled_reason": disable_reason}
    return values


def record_outcomes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write fetch outcomes, a row per source (its ``id`` and columns), as UPDATEs by primary key batched
    per set of columns: a round of 1,000 unchanged feeds is one statement in one transaction (issue 18)."""
    if rows:
        session.execute(update(Source), list(rows))


def _content_hash(entry: ParsedEntry) -> str:
    basis = "\x00".join((entry.title, entry.summary_html or entry.summary, entry.url or "", *entry.authors))
    return hashlib.sha256(basis.encode()).hexdigest()


def _new_row(source_id: int, entry: ParsedEntry, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "entry_key": entry.entry_key,
        "ingested_at": now,
        **_row(entry, digest, now),
    }


def _row(entry: ParsedEntry, digest: str, now: datetime, published: datetime | None = None) -> dict[str, Any]:
    """The columns an entry sets, on insert and on update (``published``: the date stored before)."""
    return {
        "url": entry.url,
        "title": entry.title,
        "story_key": _story_key(entry),
        "updated_at": now,
        "content_hash": digest,
        "summary": entry.summary,
        "summary_html": entry.summary_html,
        "authors": list(entry.authors),
        "language": entry.language,
        "external_id": entry.external_id,
        "category": entry.category,
        "discussion_url": entry.discussion_url,
        "published_at": _published(entry, now, published),
    }


def _published(entry: ParsedEntry, now: datetime, before: datetime | None) -> datetime:
    """The publication date to store. A missing date, or one in the future (feeds' clocks and typos), is
    the time the item was first seen (issue 16). An update may move the date back, never forward: an edit
    is not a new publication, and a date never later than first-seen lets counts by publication date be
    bounded by the indexed storage time.
    """
    date = entry.published_at if entry.published_at and entry.published_at <= now else None
    if before is None:
        return date or now
    return min(date, before) if date else before


def _story_key(entry: ParsedEntry) -> str:
    """Copies of one story share a key: a paper by its arXiv id or DOI, anything else by its canonical URL."""
    if entry.external_id:
        return story_key(None, entry.external_id)
    return story_key(entry.url, entry.title)


def tag_horizon(session: Session, now: datetime) -> datetime:
    """How far the matcher has come: when the oldest item not yet tagged was ingested (``now`` if none).

    A digest window closes no later than this, and the skill stream ends before it, so an item ingested
    just before a slot is not left out by being tagged just after.
    """
    oldest = session.scalar(
        select(func.min(Item.ingested_at)).where(
            Item.tagged_version.is_(None), Item.ingested_at >= now - TAG_GRACE, Item.ingested_at < now
        )
    )
    return min(now, oldest) if oldest is not None else now
