"""The words every wing shares: cadences, weekdays, feed kinds, their fetch intervals, durations.

They sit in the base because run-time settings (``ops.schedules``) validate against them and both
``ingest`` and ``deliver`` act on them; a wing that owned them would make the others import it sideways.
"""

from __future__ import annotations

from collections.abc import Mapping

from digest.errors import InvalidInputError

CADENCES = ("hourly", "daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SOURCE_KINDS = ("news", "blog", "paper")
DEFAULT_INTERVALS = {"news": 15 * 60, "blog": 60 * 60, "paper": 6 * 60 * 60}
MIN_INTERVAL = 60
MAX_INTERVAL = 24 * 60 * 60
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration like ``90s``, ``15m``, ``1h`` or ``2d``; raises ``InvalidInputError``."""
    text = text.strip().lower()
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()) or int(number) <= 0:
        raise InvalidInputError(f"not a duration: {text!r} (use forms like 90s, 15m, 1h, 2d)")
    return int(number) * _UNITS[unit]


def interval_for(kind: str, override: int | None, defaults: Mapping[str, int] = DEFAULT_INTERVALS) -> int:
    """The fetch interval of a source: its own, else its kind's default (``defaults``: the ones ops set in
    the database, ``digest.ops.schedules.feed_intervals``; the built-in ones when not given).
    """
    return max(MIN_INTERVAL, override or defaults[kind])
