"""A crawl round: many claimed sources fetched on threads, their outcomes recorded a batch at a time.

    targets (one read) -> threads: fetch_and_store (a 304 writes nothing; a changed feed writes its items
        and its outcome in one transaction) [-> tag_items]
        -> the calling thread: record the other outcomes, OUTCOME_BATCH to a transaction

``digest crawl`` runs this; Celery's ``crawl_source`` task refreshes one source (``crawl.refresh_source``).
A round of 1,000 unchanged feeds was a transaction per feed (issue 18): now it is two or three in all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.db import transaction
from digest.ingest.crawl import (
    FeedFetcher,
    FeedParser,
    MatcherCache,
    Refreshed,
    SourceWrite,
    fetch_and_store,
    record,
    tag_items,
    targets,
)
from digest.ingest.parse import parse_feed
from digest.records import CrawlOutcome

# Outcomes written per transaction. A crash loses at most this many outcomes: their sources stay claimed
# until the lease ends and are fetched again (conditionally, and storing items is idempotent).
OUTCOME_BATCH = 250


def crawl_round(
    sessions: sessionmaker[Session],
    fetcher: FeedFetcher,
    source_ids: Sequence[int],
    now: datetime,
    rng: random.Random,
    parse: FeedParser = parse_feed,
    *,
    threads: int,
    matchers: MatcherCache | None = None,
    done: Callable[[CrawlOutcome], None] | None = None,
) -> list[CrawlOutcome]:
    """Refresh ``source_ids`` (claimed) on ``threads`` threads; outcomes in completion order.

    With ``matchers`` each source's new and changed items are tagged as soon as they are stored (the
    foreground path); ``done`` is called in this thread for each outcome (a progress bar).
    """

    def work(target_index: int) -> Refreshed:
        refreshed = fetch_and_store(sessions, fetcher, planned[target_index], now, rng, parse)
        if matchers is not None:
            tag_items(sessions, matchers, refreshed.outcome.changed)
        return refreshed

    planned = targets(sessions, source_ids)
    outcomes: list[CrawlOutcome] = []
    pending: list[SourceWrite] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(work, index) for index in range(len(planned))]
        try:
            for future in as_completed(futures):
                refreshed = future.result()
                outcomes.append(refreshed.outcome)
                if refreshed.write is not None:
                    pending.append(refreshed.write)
                if done is not None:
                    done(refreshed.outcome)
                if len(pending) >= OUTCOME_BATCH:
                    _flush(sessions, pending)
        finally:
            # What was fetched is recorded even when a fetch raised something unexpected.
            for future in futures:
                future.cancel()
            _flush(sessions, pending)
    return outcomes


def _flush(sessions: sessionmaker[Session], pending: list[SourceWrite]) -> None:
    if pending:
        with transaction(sessions) as session:
            record(session, pending)
        pending.clear()
