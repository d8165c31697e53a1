"""Celery beat on the ``schedules`` table: cadence changes apply within ``REFRESH`` with no restart.

The stock scheduler reads ``beat_schedule`` once at start-up. This one reads the enabled rows of the
table at start and again every ``REFRESH`` seconds (on beat's own clock, ``app.now``), and wakes at least
that often even when the next task is a day away, so ``digest cadence set crawl-tick 30s`` or an admin's
edit is in force within a minute. An entry whose cadence did not change keeps its last run time; one that
changed keeps it too, so a tick made shorter fires as soon as the new interval since its last run is up.

Nothing is persisted: after a restart every interval counts from start-up, which is harmless because every
periodic task is idempotent (claims and unique windows, ``docs/design.md``). Beat's schedule file is only
touched, as a heartbeat for the health check.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery.beat import Scheduler
from celery.schedules import crontab, schedule
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest import schedules
from digest.config import load_settings
from digest.db import make_engine, make_sessions, transaction

# Issue 7 asks for changes within a minute; half of that leaves room for a slow database.
REFRESH = timedelta(seconds=30)
logger = logging.getLogger(__name__)


class DatabaseScheduler(Scheduler):  # type: ignore[misc]  # celery ships no types: Scheduler is Any
    """A beat scheduler whose entries are the enabled rows of ``schedules``, re-read every ``REFRESH``.

    ``sessions`` may be given (tests drive it on their own database). Beat itself names this class by
    ``beat_scheduler`` and gives only the app, so the scheduler then opens the configured database on
    first use (never when ``lazy``: beat also builds a scheduler just to print its start-up banner).
    """

    max_interval = int(REFRESH.total_seconds())

    def __init__(
        self,
        app: Any,
        *args: Any,
        sessions: sessionmaker[Session] | None = None,
        schedule_filename: str | None = None,
        **kwargs: Any,
    ):
        # Nothing is stored in beat's schedule file; it is touched at every re-read instead, because the
        # compose health check (docker-compose.yml) takes a fresh file as the sign that beat is alive.
        self._heartbeat = Path(schedule_filename) if schedule_filename else None
        self._sessions = sessions
        self._owns_engine = sessions is None
        self._read_at: datetime | None = None
        self._cadences: dict[str, tuple[str, int | None, str | None]] = {}
        super().__init__(app, *args, **kwargs)
        # Beat passes its own max_interval (5 minutes by default); sleeping that long would miss REFRESH.
        self.max_interval = min(self.max_interval, int(REFRESH.total_seconds()))

    def setup_schedule(self) -> None:
        """Load the entries from the table (called by celery when the scheduler is not lazy)."""
        self.refresh(self.app.now())

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Re-read the table when ``REFRESH`` has passed, then run celery's tick (one due task at most)."""
        now = self.app.now()
        if self._read_at is None or now - self._read_at >= REFRESH:
            try:
                self.refresh(now)
            except SQLAlchemyError:
                # A database restart must not stop the ticks: keep the entries we have, try again later.
                logger.warning(
                    "beat: could not read the schedules table; keeping the last schedule", exc_info=True
                )
                self._read_at = now
        return float(super().tick(*args, **kwargs))

    def refresh(self, now: datetime) -> None:
        """Read the enabled schedule rows; if any cadence, task or row changed, rebuild the entries."""
        if self._heartbeat is not None:
            self._heartbeat.touch()
        with transaction(self.sessions) as session:
            rows = schedules.beat_entries(session)
        self._read_at = now
        cadences = {row.name: (row.task, row.every_seconds, row.cron) for row in rows}
        if cadences == self._cadences:
            return
        self._cadences = cadences
        self.merge_inplace({row.name: {"task": row.task, "schedule": self._schedule_of(row)} for row in rows})
        # merge_inplace updates entries in place, which celery's own change check cannot see; dropping the
        # heap makes the next tick order every entry by its new due time.
        self._heap = None

    def _schedule_of(self, row: schedules.BeatEntry) -> Any:
        if row.cron:
            return _cron(row.cron, self.app)
        return schedule(timedelta(seconds=row.every_seconds or 0), app=self.app)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory: the one given, else one on the configured database, made on first use."""
        if self._sessions is None:
            self._sessions = make_sessions(make_engine(load_settings().database_url))
        return self._sessions

    def close(self) -> None:
        """Release the broker connection (celery) and the database engine this scheduler opened."""
        super().close()
        if self._owns_engine and self._sessions is not None:
            bind = self._sessions.kw.get("bind")
            if bind is not None:
                bind.dispose()

    @property
    def info(self) -> str:
        """The line beat prints about its scheduler at start-up."""
        return f"    . db -> schedules table, re-read every {int(REFRESH.total_seconds())}s"


def _cron(expression: str, app: Any) -> crontab:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split(" ")
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        app=app,
    )
