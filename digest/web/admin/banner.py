"""The health banner on every admin page (issue 17, "for the person on call at 2am"): ``digest.health``
read at most every ``FRESH`` per process, since asking the workers waits up to a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from digest import health
from digest.db import transaction
from digest.web.context import Web

# A page view reads health at most this often; the banner says how old its reading is.
FRESH = timedelta(seconds=15)


class Banner:
    """The latest ``health.Status``, read again once it is older than ``FRESH``."""

    def __init__(self, web: Web, read: Callable[[Web, datetime], health.Status] | None = None) -> None:
        self._web = web
        self._read = read or _read
        self._lock = threading.Lock()
        self._status: health.Status | None = None

    def status(self) -> health.Status:
        """The health now, or as read less than ``FRESH`` ago."""
        now = self._web.clock()
        with self._lock:
            if self._status is None or not now - FRESH <= self._status.at <= now:
                self._status = self._read(self._web, now)
            return self._status

    def forget(self) -> None:
        """Read again at the next page: an admin's switch just changed what it shows."""
        with self._lock:
            self._status = None


def _read(web: Web, now: datetime) -> health.Status:
    with transaction(web.rt.sessions) as session:
        return health.gather(web.settings, session, now)
