"""The catalogue of feeds: add, import, export, pause, resume and remove. Used by the CLI (and the admin API).

URLs are checked here, once, for every way a feed comes in; adding a URL twice is refused, and an import
skips the URLs already known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest import PACKAGE_DIR
from digest.errors import InvalidInputError, NotFoundError
from digest.ingest import sources as plan
from digest.ingest.opml import OpmlFeed, OpmlResult, parse_opml
from digest.models import Item, Source
from digest.ops import schedules
from digest.vocabulary import MIN_INTERVAL, interval_for

STATES = {"pause": "paused", "resume": "active"}
# Why a demo feed is paused (issue 17): its server on 127.0.0.1 lives only while ``digest demo`` runs, so
# the feed would fail forever between runs. The reason marks it as a demo feed in ``feeds list`` and the
# admin; the next demo resumes it.
DEMO_PAUSED = "demo feed: served only while `digest demo` runs; the next demo resumes it"
# The curated starting point shipped with the package (issue 16). The engineering blogs are derived from a
# CC BY-SA 4.0 list, so they stay in a file of their own (digest/data/NOTICE.md).
STARTER_FILES = (
    PACKAGE_DIR / "data" / "starter.opml",
    PACKAGE_DIR / "data" / "starter-engineering-blogs.opml",
)


# What an HTTP status means for a feed, said the way an admin would say it.
HTTP_WORDS = {
    401: "the feed asks for a login",
    403: "the server refuses us",
    404: "the feed's address no longer exists",
    410: "the feed was removed for good",
    429: "the server says we ask too often",
    500: "the server failed",
    502: "the server's gateway failed",
    503: "the server is unavailable",
    504: "the server's gateway timed out",
}


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """A feed as ``digest feeds list`` shows it."""

    id: int
    url: str
    name: str
    kind: str
    interval: int
    state: str
    last_status: str | None
    last_http_status: int | None
    last_error: str | None
    last_warning: str | None
    disabled_reason: str | None
    consecutive_failures: int
    next_fetch: datetime
    last_fetched: datetime | None
    items: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an OPML import did."""

    added: tuple[str, ...]
    known: tuple[str, ...]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


def add_feed(
    session: Session,
    url: str,
    kind: str,
    now: datetime,
    *,
    interval: int | None = None,
    name: str | None = None,
) -> FeedInfo:
    """Add one feed, due at once. ``InvalidInputError`` for a bad URL or kind, or a URL already added."""
    clean = plan.check_feed_url(url)
    plan.check_kind(kind)
    if session.scalar(select(Source.id).where(Source.url == clean)) is not None:
        raise InvalidInputError(f"{clean} is already a feed")
    source = Source(
        url=clean,
        name=(name or "").strip() or urlsplit(clean).hostname or clean,
        kind=kind,
        interval_seconds=interval,
        next_fetch_at=now,
        created_at=now,
    )
    session.add(source)
    session.flush()
    return describe(session, source.id)


def import_feeds(session: Session, opml: OpmlResult, default_kind: str, now: datetime) -> ImportResult:
    """Add every feed of an OPML document not known yet; feeds without a kind get ``default_kind``."""
    plan.check_kind(default_kind)
    known = set(session.scalars(select(Source.url).where(Source.url.in_([feed.url for feed in opml.feeds]))))
    added = []
    for feed in opml.feeds:
        if feed.url in known:
            continue
        add_feed(
            session, feed.url, feed.kind or default_kind, now, interval=feed.interval_seconds, name=feed.name
        )
        added.append(feed.url)
        known.add(feed.url)
    already = tuple(feed.url for feed in opml.feeds if feed.url not in added)
    return ImportResult(tuple(added), already, opml.skipped, opml.warnings)


def starter_catalogue(only: str | None = None) -> OpmlResult:
    """The starter catalogue's feeds (every kind, or ``only`` one), as one OPML result."""
    if only is not None:
        plan.check_kind(only)
    feeds: list[OpmlFeed] = []
    for path in STARTER_FILES:
        feeds += [feed for feed in parse_opml(path.read_bytes()).feeds if only in (None, feed.kind)]
    return OpmlResult(feeds=tuple(feeds), skipped=(), warnings=())


def export_feeds(session: Session) -> list[OpmlFeed]:
    """Every feed, in id order, as OPML outlines (kind and own interval kept)."""
    return [
        OpmlFeed(url=s.url, name=s.name, kind=s.kind, interval_seconds=s.interval_seconds, site_url=None)
        for s in session.scalars(select(Source).order_by(Source.id))
    ]


def set_state(
    session: Session, source_id: int, action: str, now: datetime, *, reason: str | None = None
) -> FeedInfo:
    """Pause or resume a feed. Pausing records ``reason`` if given; resuming also re-enables a disabled
    feed, clears the reason and makes it due now."""
    source = _get(session, source_id)
    source.state = STATES[action]
    if action == "pause" and reason is not None:
        source.disabled_reason = reason
    if action == "resume":
        source.disabled_reason = None
        source.consecutive_failures = 0
        source.next_fetch_at = now
    session.flush()
    return describe(session, source_id)


def fetch_soon(session: Session, source_id: int, now: datetime) -> FeedInfo:
    """Make an active feed due now: the next crawl tick fetches it (an admin's "fetch now"). A paused or
    disabled feed is refused, since making it due would not fetch it: resume it first."""
    source = _get(session, source_id)
    if source.state != "active":
        raise InvalidInputError(f"feed {source_id} is {source.state}: resume it first")
    source.next_fetch_at = now
    session.flush()
    return describe(session, source_id)


def set_interval(session: Session, source_id: int, seconds: int | None, now: datetime) -> FeedInfo:
    """Give a feed its own fetch interval (``None``: its kind's default again); the next fetch moves
    no later than one new interval from now."""
    source = _get(session, source_id)
    if seconds is not None and seconds < MIN_INTERVAL:
        raise InvalidInputError(f"the interval must be at least {MIN_INTERVAL} seconds")
    source.interval_seconds = seconds
    due = now + timedelta(seconds=interval_for(source.kind, seconds, schedules.feed_intervals(session)))
    source.next_fetch_at = min(source.next_fetch_at, due)
    session.flush()
    return describe(session, source_id)


def remove_feed(session: Session, source_id: int) -> FeedInfo:
    """Delete a feed and the items only it carried (their tags go with them)."""
    info = describe(session, source_id)
    session.execute(delete(Item).where(Item.source_id == source_id))
    session.execute(delete(Source).where(Source.id == source_id))
    return info


def list_feeds(session: Session, ids: Sequence[int] | None = None) -> list[FeedInfo]:
    """Feeds in id order (all, or ``ids``)."""
    query = select(Source.id).order_by(Source.id)
    if ids is not None:
        query = query.where(Source.id.in_(list(ids)))
    return [describe(session, source_id) for source_id in session.scalars(query)]


def describe(session: Session, source_id: int) -> FeedInfo:
    """One feed with its item count."""
    source = _get(session, source_id)
    items = session.scalar(select(func.count()).select_from(Item).where(Item.source_id == source_id)) or 0
    return FeedInfo(
        id=source.id,
        url=source.url,
        name=source.name,
        kind=source.kind,
        interval=interval_for(source.kind, source.interval_seconds, schedules.feed_intervals(session)),
        state=source.state,
        last_status=source.last_status,
        last_http_status=source.last_http_status,
        last_error=source.last_error,
        last_warning=source.last_warning,
        disabled_reason=source.disabled_reason,
        consecutive_failures=source.consecutive_failures,
        next_fetch=source.next_fetch_at,
        last_fetched=source.last_fetched_at,
        items=items,
    )


def _get(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFoundError(f"no feed with id {source_id}")
    return source


def failing(info: FeedInfo) -> bool:
    """A feed that failed its last fetch or is not being crawled."""
    return info.consecutive_failures > 0 or info.state != "active"


def in_words(info: FeedInfo) -> str:
    """Why a feed is not being read, in a sentence; empty for a healthy feed."""
    if info.state != "active":
        reason = info.disabled_reason or info.last_error
        return f"{info.state}" + (f": {reason}" if reason else "")
    if not info.consecutive_failures:
        return info.last_warning or ""
    meaning = HTTP_WORDS.get(info.last_http_status or 0, "")
    if not meaning and info.last_http_status and info.last_http_status >= 500:
        meaning = "the server failed"
    parts = [part for part in (meaning, info.last_error) if part]
    return " — ".join(parts) or "the last fetch failed"
