"""The stream of one skill's items, newest first, in keyset pages behind a settled horizon.

    cursor (signed token) -> decode -> keyset (ingested_at, item id) and direction
        -> tags of the skill past the keyset and before the horizon -> items, sources, all their tags

Order is the time a tag's item was first stored, then the item id (a crawl stamps a whole batch with one
``ingested_at``, so the id breaks ties). Paging by keyset instead of offset is what keeps pages free of
gaps and repeats while items arrive: a position is a row's key, not a count of rows before it.

A keyset only helps if nothing is later inserted *behind* a position already handed out, and rows here do
arrive late: a crawl stamps ``ingested_at`` before it fetches and commits after, and tags are written by a
second transaction after the items (``crawl.tag_items``). So the stream ends at a horizon: before the
oldest item still waiting for the matcher (``store.tag_horizon``, as digest windows do) and at least
``SETTLE`` in the past. Everything before it is settled; what becomes visible later is always newer than
anything served, so a client polling "newer than my last position" misses nothing.

Two directions, one cursor parameter: the first page (no cursor) is the newest settled items, newest
first, with ``next`` (an *older* cursor: the following page, ``None`` at the end) and ``head`` (a
*newer* cursor: poll it for what arrives). A newer cursor answers items after it, oldest first, and its
``next`` always continues from the last item given (or stays put when there was none).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from digest.errors import InvalidInputError
from digest.ingest.skills import resolve_skill
from digest.ingest.store import tag_horizon
from digest.models import Item, Skill, Source, Tag

# How long after its ``ingested_at`` an item may still be committed: the fetch (``DIGEST_HTTP_TIMEOUT``,
# 30 s by default, waits for a per-host slot first) and the parse happen between the two. Items newer
# than this are held back, so a poller sees each item a few minutes late but never skips one.
SETTLE = timedelta(minutes=5)
# Bumped if the cursor's fields change, so old cursors fail clearly instead of meaning something else.
CURSOR_VERSION = "1"
# A purpose for the HMAC key, so a stream cursor can never be a valid signature for anything else.
_CURSOR_PURPOSE = b"digest.stream-cursor\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Direction = Literal["older", "newer"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in one skill's stream and which way to read from it."""

    skill_id: str
    direction: Direction
    ingested_at: datetime
    item_id: int


@dataclass(frozen=True, slots=True)
class StreamSkill:
    """The skill a stream is about (merges already followed)."""

    id: str
    name: str
    slug: str


@dataclass(frozen=True, slots=True)
class StreamTag:
    """One skill an item was tagged with, and why."""

    skill_id: str
    name: str
    matched: tuple[str, ...]
    in_title: bool
    score: float


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One item of a stream with its source and every tag it has."""

    id: int
    title: str
    url: str | None
    summary: str
    authors: tuple[str, ...]
    published_at: datetime
    ingested_at: datetime
    updated_at: datetime
    source_id: int
    source_name: str
    source_kind: str
    tags: tuple[StreamTag, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a stream: ``next`` continues it (``None``: no older items); ``head`` polls for new ones
    (first page only)."""

    skill: StreamSkill
    items: tuple[StreamItem, ...]
    next: Cursor | None
    head: Cursor | None


def encode_cursor(secret: str, cursor: Cursor) -> str:
    """An opaque, URL-safe token for ``cursor``, signed with ``secret`` (HMAC-SHA256) so it cannot be
    altered or forged."""
    micros = round((cursor.ingested_at - _EPOCH) / timedelta(microseconds=1))
    fields = (CURSOR_VERSION, cursor.direction[0], cursor.skill_id, str(micros), str(cursor.item_id))
    body = ".".join(fields).encode()
    return f"{_b64(body)}.{_b64(_sign(secret, body))}"


def decode_cursor(secret: str, token: str) -> Cursor:
    """The cursor a token carries; ``InvalidInputError`` if it is malformed, altered or from another key."""
    invalid = InvalidInputError(
        "the cursor is not valid: pass back a `next` or `head` value from a response unchanged"
    )
    body_part, _, signature_part = token.partition(".")
    try:
        body, signature = _unb64(body_part), _unb64(signature_part)
    except (ValueError, binascii.Error):
        raise invalid from None
    # compare_digest: the time taken must not tell an attacker how much of a forged signature was right.
    if not hmac.compare_digest(signature, _sign(secret, body)):
        raise invalid
    fields = body.decode("ascii", "replace").split(".")
    directions: dict[str, Direction] = {"o": "older", "n": "newer"}
    if len(fields) != 5 or fields[0] != CURSOR_VERSION or fields[1] not in directions:
        raise invalid
    try:
        ingested_at = _EPOCH + timedelta(microseconds=int(fields[3]))
        item_id = int(fields[4])
    except (ValueError, OverflowError):
        raise invalid from None
    return Cursor(fields[2], directions[fields[1]], ingested_at, item_id)


def find_skill(session: Session, query: str) -> StreamSkill:
    """The skill named by id, slug, name or alias, following merges; ``NotFoundError`` if there is none."""
    skill = resolve_skill(session, query)
    return StreamSkill(skill.id, skill.name, skill.slug)


def horizon(session: Session, now: datetime) -> datetime:
    """The end of the settled stream: nothing stored later may land before it (see the module doc)."""
    return min(tag_horizon(session, now), now - SETTLE)


def read_page(session: Session, skill: StreamSkill, cursor: Cursor | None, limit: int, now: datetime) -> Page:
    """One page of ``skill``'s settled stream from ``cursor`` (``None``: the newest ``limit`` items)."""
    if (
        cursor is not None
        and cursor.skill_id != skill.id
        and not _merged_into(session, cursor.skill_id, skill)
    ):
        raise InvalidInputError("the cursor belongs to another skill's stream")
    end = horizon(session, now)
    query = select(Tag.item_id, Tag.ingested_at).where(Tag.skill_id == skill.id, Tag.ingested_at < end)
    if cursor is None or cursor.direction == "older":
        if cursor is not None:
            query = query.where(_before(cursor))
        # One row more than asked tells whether an older page exists without a count.
        rows = session.execute(
            query.order_by(Tag.ingested_at.desc(), Tag.item_id.desc()).limit(limit + 1)
        ).all()
        keys = [(row.ingested_at, row.item_id) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = _at(skill, "older", keys[-1]) if more else None
        head = None
        if cursor is None:
            head = _at(skill, "newer", keys[0] if keys else (end, 0))
    else:
        rows = session.execute(
            query.where(_after(cursor)).order_by(Tag.ingested_at, Tag.item_id).limit(limit)
        ).all()
        keys = [(row.ingested_at, row.item_id) for row in rows]
        next_cursor = _at(skill, "newer", keys[-1]) if keys else cursor
        head = None
    items = _items(session, [item_id for _, item_id in keys], {item_id: at for at, item_id in keys})
    return Page(skill, tuple(items), next_cursor, head)


def _merged_into(session: Session, skill_id: str, skill: StreamSkill) -> bool:
    # A cursor taken before its skill was merged keeps working on the survivor's stream, which now
    # holds the merged skill's tags too (``taxonomy.merge`` moves them).
    merged = session.get(Skill, skill_id)
    return (
        merged is not None and merged.merged_into is not None and find_skill(session, skill_id).id == skill.id
    )


def _before(cursor: Cursor) -> Any:
    return or_(
        Tag.ingested_at < cursor.ingested_at,
        and_(Tag.ingested_at == cursor.ingested_at, Tag.item_id < cursor.item_id),
    )


def _after(cursor: Cursor) -> Any:
    return or_(
        Tag.ingested_at > cursor.ingested_at,
        and_(Tag.ingested_at == cursor.ingested_at, Tag.item_id > cursor.item_id),
    )


def _at(skill: StreamSkill, direction: Direction, key: tuple[datetime, int]) -> Cursor:
    return Cursor(skill.id, direction, key[0], key[1])


def _items(session: Session, item_ids: Sequence[int], ingested: dict[int, datetime]) -> list[StreamItem]:
    """The items of ``item_ids`` in that order, with sources and tags: two queries whatever the count."""
    if not item_ids:
        return []
    rows = session.execute(
        select(Item, Source.name, Source.kind)
        .join(Source, Source.id == Item.source_id)
        .where(Item.id.in_(item_ids))
    ).all()
    tags: dict[int, list[StreamTag]] = {}
    for tag, name in session.execute(
        select(Tag, Skill.name)
        .join(Skill, Skill.id == Tag.skill_id)
        .where(Tag.item_id.in_(item_ids))
        .order_by(Tag.item_id, Tag.score.desc(), Skill.name)
    ).all():
        tags.setdefault(tag.item_id, []).append(
            StreamTag(tag.skill_id, name, tuple(str(m) for m in tag.matched), tag.in_title, tag.score)
        )
    by_id = {
        item.id: StreamItem(
            id=item.id,
            title=item.title,
            url=item.url,
            summary=item.summary,
            authors=tuple(str(author) for author in item.authors),
            published_at=item.published_at,
            # The tag's copy, which the keyset is over (the item's own is the same unless re-stamped).
            ingested_at=ingested[item.id],
            updated_at=item.updated_at,
            source_id=item.source_id,
            source_name=source_name,
            source_kind=source_kind,
            tags=tuple(tags.get(item.id, ())),
        )
        for item, source_name, source_kind in rows
    }
    # An item deleted between the two queries is simply left out.
    return [by_id[item_id] for item_id in item_ids if item_id in by_id]


def _sign(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), _CURSOR_PURPOSE + body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
