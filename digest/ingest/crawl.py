"""Ingest orchestrator: refresh one source, top to bottom.

    claim due source -> fetch (conditional GET) -> skip if unchanged -> parse -> upsert items
                     -> record outcome and next fetch time -> (batch) match -> store tags

The same functions run in Celery tasks (``tasks.crawl_source``) and in ``digest crawl``.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Any, Protocol

from sqlalchemy import Row, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.errors import FetchError, NotFoundError, ParseError
from digest.ingest import sources as plan
from digest.ingest.match import Matcher
from digest.ingest.parse import parse_feed
from digest.ingest.store import (
    StoredItem,
    failure_values,
    record_outcomes,
    replace_tags,
    success_values,
    upsert_entries,
)
from digest.ingest.taxonomy import compile_matcher, loaded_version
from digest.models import Item, Source
from digest.ops import metrics, schedules
from digest.records import CrawlOutcome, FetchResult, ParsedFeed
from digest.vocabulary import interval_for

# A claimed source is not handed out again for this long, even if its task is lost.
CLAIM_LEASE = timedelta(minutes=10)
# Sources claimed (or read) per statement: well under SQLite's 32,766 bound parameters.
CLAIM_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SourceWrite:
    """The columns one fetch's outcome sets on its source's row, and where a permanent redirect moved it."""

    source_id: int
    values: Mapping[str, Any]
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class Refreshed:
    """One source fetched (and its items stored): the outcome, and the write that records it, or None when
    it was written with the items."""

    outcome: CrawlOutcome
    write: SourceWrite | None


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
    """Ids of active sources due at ``now`` (all active ones with ``everything``), each claimed once, the
    longest due first.

    The claim is a conditional update of ``next_fetch_at``, so two beats or two workers never fetch one
    source at once (healthchecks' compare-and-set): a source whose ``next_fetch_at`` moved since it was read
    is not claimed. One UPDATE per ``CLAIM_CHUNK`` sources, not one per source (issue 18).
    """
    with transaction(sessions) as session:
        query = select(Source.id, Source.next_fetch_at).where(Source.state == "active")
        if not everything:
            query = query.where(Source.next_fetch_at <= now)
        due = session.execute(query.order_by(Source.next_fetch_at, Source.id)).all()
        claimed: set[int] = set()
        for start in range(0, len(due), CLAIM_CHUNK):
            pairs = [(source_id, due_at) for source_id, due_at in due[start : start + CLAIM_CHUNK]]
            claimed.update(
                session.scalars(
                    update(Source)
                    .where(tuple_(Source.id, Source.next_fetch_at).in_(pairs))
                    .values(next_fetch_at=now + CLAIM_LEASE)
                    .returning(Source.id)
                    .execution_options(synchronize_session=False)
                )
            )
    return [source_id for source_id, _ in due if source_id in claimed]


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
    runs as a follow-up batch task and the foreground path runs at once (``refresh_and_tag``). A round of
    many sources is ``rounds.crawl_round``, which writes the outcomes a batch at a time.
    """
    [target] = targets(sessions, [source_id])
    refreshed = fetch_and_store(sessions, fetcher, target, now, rng, parse)
    if refreshed.write is not None:
        with transaction(sessions) as session:
            record(session, [refreshed.write])
    return refreshed.outcome


def fetch_and_store(
    sessions: sessionmaker[Session],
    fetcher: FeedFetcher,
    target: plan.SourceForFetch,
    now: datetime,
    rng: random.Random,
    parse: FeedParser = parse_feed,
) -> Refreshed:
    """Fetch one source, and parse and store its items if it changed. The outcome of a feed that stored
    items is written with them; any other outcome is left to ``record`` (with others', in one transaction)."""
    try:
        result = fetcher.fetch(target.url, etag=target.etag, last_modified=target.last_modified)
    except FetchError as exc:
        return _fail(target, now, exc)
    if result.not_modified:
        return _succeed(target, result, now, rng, status="not-modified")
    body_hash = hashlib.sha256(result.content).hexdigest()
    if body_hash == target.body_hash:
        # The server ignores conditional GET but sent the same bytes: nothing to parse or write.
        return _succeed(target, result, now, rng, status="not-modified")
    try:
        parsed = parse(result.content, url=result.url, content_type=result.content_type)
    except ParseError as exc:
        return _fail(target, now, FetchError(str(exc), status=result.status_code))
    # A changed feed's outcome goes in with its items, in the transaction the items need anyway: batched
    # apart, its writes waited for SQLite's write lock behind other feeds' items (a first crawl 20 % slower).
    with transaction(sessions) as session:
        stored = upsert_entries(session, target.id, parsed.entries, now)
        refreshed = _succeed(
            target, result, now, rng, status="ok", parsed=parsed, body_hash=body_hash, stored=stored
        )
        record(session, [refreshed.write] if refreshed.write else [])
    return Refreshed(refreshed.outcome, None)


def record(session: Session, writes: Sequence[SourceWrite]) -> None:
    """Write the outcomes of fetches to their sources' rows (``store.record_outcomes``). A permanent
    redirect moves the feed's URL unless another source has that URL already (in the table or the batch)."""
    rows, moved = [], set()
    for write in writes:
        row = {"id": write.source_id, **write.values}
        if (
            write.moved_to
            and write.moved_to not in moved
            and not _url_taken(session, write.moved_to, write.source_id)
        ):
            row["url"] = write.moved_to
            moved.add(write.moved_to)
        rows.append(row)
    record_outcomes(session, rows)


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


def targets(sessions: sessionmaker[Session], source_ids: Sequence[int]) -> list[plan.SourceForFetch]:
    """What fetching each source needs, in the order of ``source_ids``. Raises ``NotFoundError``."""
    rows: dict[int, Row[Any]] = {}
    with transaction(sessions) as session:
        for start in range(0, len(source_ids), CLAIM_CHUNK):
            chunk = list(source_ids[start : start + CLAIM_CHUNK])
            rows.update(
                (row.id, row)
                for row in session.execute(
                    select(
                        Source.id,
                        Source.url,
                        Source.kind,
                        Source.interval_seconds,
                        Source.etag,
                        Source.last_modified,
                        Source.consecutive_failures,
                        Source.body_hash,
                    ).where(Source.id.in_(chunk))
                )
            )
        # Read at every round, so `digest cadence set feed-interval.news 5m` applies from the next fetch.
        defaults = schedules.feed_intervals(session)
    missing = [source_id for source_id in source_ids if source_id not in rows]
    if missing:
        raise NotFoundError(f"no source with id {missing[0]}")
    return [
        plan.SourceForFetch(
            id=row.id,
            url=row.url,
            kind=row.kind,
            interval=interval_for(row.kind, row.interval_seconds, defaults),
            etag=row.etag,
            last_modified=row.last_modified,
            consecutive_failures=row.consecutive_failures,
            body_hash=row.body_hash,
        )
        for row in (rows[source_id] for source_id in source_ids)
    ]


def _succeed(
    target: plan.SourceForFetch,
    result: FetchResult,
    now: datetime,
    rng: random.Random,
    *,
    status: str,
    parsed: ParsedFeed | None = None,
    body_hash: str | None = None,
    stored: Sequence[StoredItem] = (),
) -> Refreshed:
    hint = plan.cache_hint(dict(result.headers), parsed.ttl_minutes if parsed else None, now)
    changes: dict[str, object] = {"last_status": status, "last_http_status": result.status_code}
    if parsed is not None:
        changes |= {
            "etag": result.etag,
            "last_modified": result.last_modified,
            "last_warning": parsed.warning,
            "body_hash": body_hash,
        }
    values = success_values(
        now, plan.next_fetch_after_success(now, target.interval, rng, publisher_hint=hint), **changes
    )
    new = sum(item.is_new for item in stored)
    metrics.fetched(status, new)
    outcome = CrawlOutcome(
        source_id=target.id,
        url=target.url,
        status=status,
        http_status=result.status_code,
        new=new,
        updated=len(stored) - new,
        error=None,
        changed=tuple(item.id for item in stored),
    )
    return Refreshed(outcome, SourceWrite(target.id, values, result.permanent_url))


def _fail(target: plan.SourceForFetch, now: datetime, exc: FetchError) -> Refreshed:
    failures = target.consecutive_failures + 1
    error = str(exc)
    reason = None
    if exc.status == 410 or (exc.permanent and exc.status is None):
        reason = error
    elif failures >= plan.MAX_FAILURES:
        reason = f"{failures} failures in a row; last: {error}"
    values = failure_values(
        failures=failures,
        error=error,
        http_status=exc.status,
        now=now,
        next_fetch_at=plan.next_fetch_after_failure(
            now, target.interval, failures, retry_after=exc.retry_after
        ),
        disable_reason=reason,
    )
    metrics.fetched("error", 0)
    return Refreshed(
        CrawlOutcome(target.id, target.url, "error", exc.status, 0, 0, error), SourceWrite(target.id, values)
    )


def _url_taken(session: Session, url: str, source_id: int) -> bool:
    return session.scalar(select(Source.id).where(Source.url == url, Source.id != source_id)) is not None
