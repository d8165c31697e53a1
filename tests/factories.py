"""Rows written straight into the database, for tests that need state but do not test how it is made.

Building state through the pipeline (a loopback feed crawled, parsed and tagged) costs a real run of it per
test; a test about figures, pages or the API needs only the rows. Items and their tags go in with one
statement each, however many there are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from digest.models import Item, Source, Tag


@dataclass(frozen=True)
class NewTag:
    """A tag as the matcher writes it: the skill, the forms it matched, whether in the title, how often."""

    skill_id: str
    matched: Sequence[str]
    in_title: bool
    count: int = 1
    score: float = 0.5


@dataclass(frozen=True)
class NewItem:
    """An item of ``source_id`` stored and tagged at ``at`` and published at ``published`` (default: ``at``).
    Its keys, URL and content hash derive from the source, title and time, so equal arguments make equal
    rows."""

    source_id: int
    title: str
    at: datetime
    tags: Sequence[NewTag] = field(default_factory=tuple)
    published: datetime | None = None

    @property
    def key(self) -> str:
        """The entry key, story key and content hash of the item."""
        return hashlib.sha256(f"{self.source_id}-{self.title}-{self.at.isoformat()}".encode()).hexdigest()


def add_source(
    session: Session, name: str, at: datetime, *, kind: str = "news", url: str | None = None
) -> int:
    """A feed named ``name`` created a long time before ``at`` and due at ``at``; its id."""
    source = Source(
        url=url or f"https://{hashlib.sha256(name.encode()).hexdigest()[:12]}.example/rss",
        name=name,
        kind=kind,
        next_fetch_at=at,
        created_at=at - timedelta(days=400),
    )
    session.add(source)
    session.flush()
    return source.id


def add_items(session: Session, items: Sequence[NewItem]) -> list[int]:
    """Store ``items`` and their tags, marked as tagged; their ids, in order."""
    if not items:
        return []
    rows = [
        {
            "source_id": item.source_id,
            "entry_key": item.key,
            "story_key": item.key,
            "url": f"https://site.example/{item.key[:16]}",
            "title": item.title,
            "published_at": item.published or item.at,
            "ingested_at": item.at,
            "updated_at": item.at,
            "content_hash": item.key,
            "tagged_version": "test",
        }
        for item in items
    ]
    ids = list(session.scalars(insert(Item).returning(Item.id, sort_by_parameter_order=True), rows))
    tags = [
        {
            "item_id": item_id,
            "skill_id": tag.skill_id,
            "ingested_at": item.at,
            "matched": list(tag.matched),
            "count": tag.count,
            "in_title": tag.in_title,
            "score": tag.score,
        }
        for item_id, item in zip(ids, items, strict=True)
        for tag in item.tags
    ]
    if tags:
        session.execute(insert(Tag), tags)
    return ids
