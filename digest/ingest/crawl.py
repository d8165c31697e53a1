"""Ingest orchestrator: refresh one source, top to bottom.

    claim due source -> fetch (conditional GET) -> skip if unchanged -> parse -> upsert items
                     -> record outcome and next fetch time -> (batch) match -> store tags

The same functions run in Celery tasks (``tasks.crawl_source``) and in ``digest crawl``.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.errors import FetchError, InvalidInputError, NotFoundError, ParseError
from digest.ingest import sources as plan
from digest.ingest.match import Matcher
from digest.ingest.parse import discover_feed_links, parse_feed
from digest.ingest.store import StoredItem, record_failure, record_success, replace_tags, upsert_entries
from digest.ingest.taxonomy import compile_matcher, loaded_version
from digest.models import Item, Source
from digest.ops import metrics, schedules
from digest.records import CrawlOutcome, FetchResult, ParsedFeed
from digest.vocabulary import interval_for

# A claimed source is not handed out again for this long, even if its task is lost.
CLAIM_LEASE = timedelta(minutes=10)


class FeedParser(Protocol):
    """``parse_feed``, in this process or in others (``ParserPool``)."""

    def __call__(self, content: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
        """Bytes to a parsed feed, or ``ParseError``."""
        ...


class ParserPool:
    """``parse_feed`` in worker processes: parsing is CPU-bound, so threads cannot spread it over cores.

    The foreground crawl uses it; Celery workers are already one process per task and parse in place.
    Workers are spawned, not forked, because the fetcher runs a thread that a fork would not carry.
    """

    def __init__(self, processes: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"))

    def __call__(self, content: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
        """Parse in a worker process and wait for it (this thread only)."""
        return self._pool.submit(parse_feed, content, url=url, content_type=content_type).result()

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FeedFetcher(Protocol):
    """What the crawler needs from the HTTP edge (``digest.fetch``)."""

    def fetch(self, url: str, *, etag: str | None, last_modified: str | None) -> FetchResult:
        """GET ``url`` conditionally, or raise ``FetchError``."""
        ...


class MatcherCache:
    """One compiled matcher per process, rebuilt when the taxonomy version in the database changes."""

    def __init__(self) -> None:
        self._matcher: Matcher | None = None
        self._lock = threading.Lock()

    def get(self, session: Session) -> Matcher:
        """The matcher for the taxonomy now loaded."""
        version = loaded_version(session) or ""
        with self._lock:
            if self._matcher is None or self._matcher.version != version:
                self._matcher = compile_matcher(session)
            return self._matcher


def claim_due_sources(
    sessions: sessionmaker[Session], now: datetime, *, everything: bool = False
) -> list[int]:
    """Ids of active sources due at ``now`` (all active ones with ``everything``), each claimed once.

    The claim is a conditional update of ``next_fetch_at``, so two beats or two workers never fetch one
    source at once (healthchecks' compare-and-set).
    """
    claimed = []
    with transaction(sessions) as session:
        query = select(Source.id, Source.next_fetch_at).where(Source.state == "active")
        if not everything:
            query = query.where(Source.next_fetch_at <= now)
        for source_id, due_at in session.execute(query.order_by(Source.next_fetch_at)).all():
            result = session.execute(
                update(Source)
                .where(Source.id == source_id, Source.next_fetch_at == due_at)
                .values(next_fetch_at=now + CLAIM_LEASE)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(source_id)
    return claimed


def refresh_source(
    sessions: sessionmaker[Session],
    fetcher: FeedFetcher,
    source_id: int,
    now: datetime,
    rng: random.Random,
    parse: FeedParser = parse_feed,
) -> CrawlOutcome:
    """Fetch, parse and store one source; every failure is recorded on the source, never raised.

    Items are not tagged here: their ids come back in ``changed`` for ``tag_items``, which the task path
    runs as a follow-up batch task and the foreground path runs at once (``refresh_and_tag``).
    """
    target = _target(sessions, source_id)
    try:
        result = fetcher.fetch(target.url, etag=target.etag, last_modified=target.last_modified)
    except FetchError as exc:
        return _fail(sessions, target, now, exc)
    if result.not_modified:
        return _succeed(sessions, target, result, now, rng, status="not-modified")
    body_hash = hashlib.sha256(result.content).hexdigest()
    if body_hash == target.body_hash:
        # The server ignores conditional GET but sent the same bytes: nothing to parse or write.
        return _succeed(sessions, target, result, now, rng, status="not-modified")
    try:
        parsed = parse(result.content, url=result.url, content_type=result.content_type)
    except ParseError as exc:
        return _fail(sessions, target, now, FetchError(str(exc), status=result.status_code))
    with transaction(sessions) as session:
        stored = upsert_entries(session, target.id, parsed.entries, now)
    return _succeed(
        sessions, target, result, now, rng, status="ok", parsed=parsed, body_hash=body_hash, stored=stored
    )


def tag_items(sessions: sessionmaker[Session], matchers: MatcherCache, item_ids: Sequence[int]) -> int:
    """Match a batch of items against the taxonomy and store their tags; returns the tags written."""
    if not item_ids:
        return 0
    with transaction(sessions) as session:
        items = session.execute(
            select(Item.id, Item.title, Item.summary, Item.ingested_at).where(Item.id.in_(list(item_ids)))
        ).all()
        matcher = matchers.get(session)
        # One scan for the whole batch: the per-item cost dominates short feed items (issue 4).
        tagged = matcher.tag_many([(title, summary) for _, title, summary, _ in items])
        tags = {row[0]: item_tags for row, item_tags in zip(items, tagged, strict=True)}
        ingested = {item_id: ingested_at for item_id, _, _, ingested_at in items}
        return metrics.tagged(replace_tags(session, tags, ingested, matcher.version))


def stale_items(sessions: sessionmaker[Session], matchers: MatcherCache, since: datetime | None) -> list[int]:
    """Ids of items (ingested since ``since``) not yet tagged by the taxonomy now loaded, oldest first.

    ``tag_items`` stamps each item with the taxonomy version, so a re-tag that was interrupted picks up
    where it stopped.
    """
    with transaction(sessions) as session:
        version = matchers.get(session).version
        query = select(Item.id).where(or_(Item.tagged_version.is_(None), Item.tagged_version != version))
        if since is not None:
            query = query.where(Item.ingested_at >= since)
        return list(session.scalars(query.order_by(Item.id)))


def refresh_and_tag(
    sessions: sessionmaker[Session],
    fetcher: FeedFetcher,
    matchers: MatcherCache,
    source_id: int,
    now: datetime,
    rng: random.Random,
    parse: FeedParser = parse_feed,
) -> CrawlOutcome:
    """``refresh_source`` then ``tag_items`` in the foreground (the CLI and the demo)."""
    outcome = refresh_source(sessions, fetcher, source_id, now, rng, parse)
    tag_items(sessions, matchers, outcome.changed)
    return outcome


@dataclass(frozen=True, slots=True)
class FoundFeed:
    """A feed URL that was fetched and parsed, and the feed's own title."""

    url: str
    title: str


def find_feed(fetcher: FeedFetcher, url: str) -> FoundFeed:
    """The feed at ``url``; for a web page, the first feed it links to (RSS/Atom autodiscovery).

    Raises ``InvalidInputError`` when neither the URL nor any linked URL is a readable feed.
    """
    result = fetcher.fetch(url, etag=None, last_modified=None)
    try:
        parsed = parse_feed(result.content, url=result.url, content_type=result.content_type)
        return FoundFeed(result.permanent_url or url, parsed.title)
    except ParseError as exc:
        candidates = discover_feed_links(result.content, result.url)
        if not candidates:
            raise InvalidInputError(f"no feed at {url}: {exc}") from None
    for candidate in candidates:
        try:
            linked = fetcher.fetch(candidate, etag=None, last_modified=None)
            parsed = parse_feed(linked.content, url=linked.url, content_type=linked.content_type)
        except (FetchError, ParseError):
            continue
        return FoundFeed(linked.permanent_url or candidate, parsed.title)
    raise InvalidInputError(f"{url} links to {len(candidates)} feed(s), none of which could be read")


def _target(sessions: sessionmaker[Session], source_id: int) -> plan.SourceForFetch:
    with transaction(sessions) as session:
        row = session.execute(
            select(
                Source.url,
                Source.kind,
                Source.interval_seconds,
                Source.etag,
                Source.last_modified,
                Source.consecutive_failures,
                Source.body_hash,
            ).where(Source.id == source_id)
        ).first()
        # Read at every fetch, so `digest cadence set feed-interval.news 5m` applies from the next fetch.
        defaults = schedules.feed_intervals(session)
    if row is None:
        raise NotFoundError(f"no source with id {source_id}")
    return plan.SourceForFetch(
        id=source_id,
        url=row.url,
        kind=row.kind,
        interval=interval_for(row.kind, row.interval_seconds, defaults),
        etag=row.etag,
        last_modified=row.last_modified,
        consecutive_failures=row.consecutive_failures,
        body_hash=row.body_hash,
    )


def _succeed(
    sessions: sessionmaker[Session],
    target: plan.SourceForFetch,
    result: FetchResult,
    now: datetime,
    rng: random.Random,
    *,
    status: str,
    parsed: ParsedFeed | None = None,
    body_hash: str | None = None,
    stored: Sequence[StoredItem] = (),
) -> CrawlOutcome:
    hint = plan.cache_hint(dict(result.headers), parsed.ttl_minutes if parsed else None, now)
    changes: dict[str, object] = {"last_status": status, "last_http_status": result.status_code}
    if parsed is not None:
        changes |= {
            "etag": result.etag,
            "last_modified": result.last_modified,
            "last_warning": parsed.warning,
            "body_hash": body_hash,
        }
    with transaction(sessions) as session:
        if result.permanent_url and not _url_taken(session, result.permanent_url, target.id):
            changes["url"] = result.permanent_url
        record_success(
            session,
            target.id,
            now,
            plan.next_fetch_after_success(now, target.interval, rng, publisher_hint=hint),
            **changes,
        )
    new = sum(item.is_new for item in stored)
    metrics.fetched(status, new)
    return CrawlOutcome(
        source_id=target.id,
        url=target.url,
        status=status,
        http_status=result.status_code,
        new=new,
        updated=len(stored) - new,
        error=None,
        changed=tuple(item.id for item in stored),
    )


def _fail(
    sessions: sessionmaker[Session], target: plan.SourceForFetch, now: datetime, exc: FetchError
) -> CrawlOutcome:
    failures = target.consecutive_failures + 1
    error = str(exc)
    reason = None
    if exc.status == 410 or (exc.permanent and exc.status is None):
        reason = error
    elif failures >= plan.MAX_FAILURES:
        reason = f"{failures} failures in a row; last: {error}"
    with transaction(sessions) as session:
        record_failure(
            session,
            target.id,
            error=error,
            http_status=exc.status,
            now=now,
            next_fetch_at=plan.next_fetch_after_failure(
                now, target.interval, failures, retry_after=exc.retry_after
            ),
            disable_reason=reason,
        )
    metrics.fetched("error", 0)
    return CrawlOutcome(target.id, target.url, "error", exc.status, 0, 0, error)


def _url_taken(session: Session, url: str, source_id: int) -> bool:
    return session.scalar(select(Source.id).where(Source.url == url, Source.id != source_id)) is not None
