"""Ingest orchestrator: refresh one source, top to bottom.

    claim due source -> fetch (conditional GET) -> parse -> upsert items -> match -> store tags
                     -> record outcome and next fetch time

The same functions run in Celery tasks (``tasks.crawl_source``) and in ``digest crawl``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest import sources as plan
from digest.db import transaction
from digest.errors import FetchError, NotFoundError, ParseError
from digest.fetch import fetch
from digest.match import Matcher
from digest.models import Source
from digest.parse import parse_feed
from digest.records import CrawlOutcome, FetchResult
from digest.store import record_failure, record_success, replace_tags, upsert_entries
from digest.taxonomy import compile_matcher, loaded_version

# A claimed source is not handed out again for this long, even if its task is lost.
CLAIM_LEASE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    """Limits the crawler applies to every fetch."""

    max_bytes: int


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
    client: httpx.Client,
    matchers: MatcherCache,
    source_id: int,
    now: datetime,
    limits: CrawlLimits,
    rng: random.Random,
) -> CrawlOutcome:
    """Fetch, parse, store and tag one source; every failure is recorded on the source, never raised."""
    with transaction(sessions) as session:
        source = session.get(Source, source_id)
        if source is None:
            raise NotFoundError(f"no source with id {source_id}")
        target = plan.SourceForFetch(
            source.id,
            source.url,
            source.kind,
            plan.interval_for(source.kind, source.interval_seconds),
            source.etag,
            source.last_modified,
            source.consecutive_failures,
        )
    try:
        result = fetch(
            client,
            target.url,
            etag=target.etag,
            last_modified=target.last_modified,
            max_bytes=limits.max_bytes,
        )
    except FetchError as exc:
        return _fail(sessions, target, now, str(exc), exc.status, permanent=exc.status == 410)
    if result.not_modified:
        return _succeed(sessions, target, result, now, rng, status="not-modified", stored=None)
    try:
        parsed = parse_feed(result.content, url=result.url, content_type=result.content_type)
    except ParseError as exc:
        return _fail(sessions, target, now, str(exc), result.status_code, permanent=False)
    with transaction(sessions) as session:
        stored = upsert_entries(session, target.id, parsed.entries, now)
        matcher = matchers.get(session)
        tags = {item.id: matcher.tag(item.title, item.summary) for item in stored}
        ingested = {item.id: item.ingested_at for item in stored}
        tagged = replace_tags(session, tags, ingested, matcher.version)
        counts = (sum(item.is_new for item in stored), sum(not item.is_new for item in stored), tagged)
    return _succeed(sessions, target, result, now, rng, status="ok", stored=counts)


def _succeed(
    sessions: sessionmaker[Session],
    target: plan.SourceForFetch,
    result: FetchResult,
    now: datetime,
    rng: random.Random,
    *,
    status: str,
    stored: tuple[int, int, int] | None,
) -> CrawlOutcome:
    new, updated, tagged = stored or (0, 0, 0)
    with transaction(sessions) as session:
        source = session.get(Source, target.id)
        assert source is not None
        record_success(
            source,
            status=status,
            http_status=result.status_code,
            etag=result.etag,
            last_modified=result.last_modified,
            now=now,
            next_fetch_at=plan.next_fetch_after_success(now, target.interval, rng),
        )
        if result.permanent_url and not _url_taken(session, result.permanent_url, target.id):
            source.url = result.permanent_url
    return CrawlOutcome(target.id, target.url, status, result.status_code, new, updated, tagged, None)


def _fail(
    sessions: sessionmaker[Session],
    target: plan.SourceForFetch,
    now: datetime,
    error: str,
    http_status: int | None,
    *,
    permanent: bool,
) -> CrawlOutcome:
    failures = target.consecutive_failures + 1
    reason = None
    if permanent:
        reason = error
    elif failures >= plan.MAX_FAILURES:
        reason = f"{failures} failures in a row; last: {error}"
    with transaction(sessions) as session:
        source = session.get(Source, target.id)
        assert source is not None
        record_failure(
            source,
            error=error,
            http_status=http_status,
            now=now,
            next_fetch_at=plan.next_fetch_after_failure(now, target.interval, failures),
            disable_reason=reason,
        )
    return CrawlOutcome(target.id, target.url, "error", http_status, 0, 0, 0, error)


def _url_taken(session: Session, url: str, source_id: int) -> bool:
    return session.scalar(select(Source.id).where(Source.url == url, Source.id != source_id)) is not None
