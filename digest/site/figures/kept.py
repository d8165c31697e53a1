"""Figures kept per process until the daily tables or the taxonomy change, or the day turns (issue 13)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import date
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from digest.ingest.taxonomy import loaded_version
from digest.site.figures.daily import refresh_generation

T = TypeVar("T")


class KeptUntilRefresh(Generic[T]):
    """One value computed from the daily tables (a ranking), computed again only when its key changes: the
    refresh generation, the taxonomy version, ``today`` and the caller's own ``extra`` arguments.

    Such values read every row of a window (about 0.2 s at a million items, docs/performance.md), yet change
    only when a refresh commits or the taxonomy changes. The key is read first, so a kept value is never
    older than its key.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._value: T | None = None

    def get(self, session: Session, today: date, compute: Callable[[], T], *extra: Hashable) -> T:
        """The kept value for this key, or ``compute()``'s, kept for next time."""
        key = (refresh_generation(session), loaded_version(session), today, *extra)
        with self._lock:
            if key == self._key and self._value is not None:
                return self._value
        value = compute()
        with self._lock:
            self._key, self._value = key, value
        return value
