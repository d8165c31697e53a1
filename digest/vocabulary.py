"""The words every wing shares: cadences, weekdays, feed kinds, their fetch intervals, durations.

They sit in the base because run-time settings (``ops.schedules``) validate against them and both
``ingest`` and ``deliver`` act on them; a wing that owned them would make the others import it sideways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from digest.errors import InvalidInputError

CADENCES = ("hourly", "daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SOURCE_KINDS = ("news", "blog", "paper")
DEFAULT_INTERVALS = {"news": 15 * 60, "blog": 60 * 60, "paper": 6 * 60 * 60}
MIN_INTERVAL = 60
MAX_INTERVAL = 24 * 60 * 60
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Every list of skills one request may name (form, API, CLI), and what one subscription may hold: each
# name is resolved with its own query, so an unbounded list holds a worker for as long as it likes
# (issue 14, finding 3: 50,000 entries took 45 s).
MAX_SKILLS_PER_REQUEST = 20
MAX_SKILLS_PER_SUBSCRIPTION = 50


def parse_duration(text: str) -> int:
    """Seconds in a duration like ``90s``, ``15m``, ``1h`` or ``2d``; raises ``InvalidInputError``."""
    text = text.strip().lower()
    number, unit = text[:-1], text[-1:]
    # Nine digits at most: int() refuses more than 4,300, and no interval needs more (issue 14).
    if (
        unit not in _UNITS
        or not (number.isascii() and number.isdigit() and len(number) <= 9)
        or int(number) <= 0
    ):
        raise InvalidInputError(f"not a duration: {text!r} (use forms like 90s, 15m, 1h, 2d)")
    return int(number) * _UNITS[unit]


def interval_for(kind: str, override: int | None, defaults: Mapping[str, int] = DEFAULT_INTERVALS) -> int:
    """The fetch interval of a source: its own, else its kind's default (``defaults``: the ones ops set in
    the database, ``digest.ops.schedules.feed_intervals``; the built-in ones when not given).
    """
    return max(MIN_INTERVAL, override or defaults[kind])


def limit_skills(queries: Sequence[str]) -> Sequence[str]:
    """``queries``, or ``InvalidInputError`` if one request names more than MAX_SKILLS_PER_REQUEST."""
    if len(queries) > MAX_SKILLS_PER_REQUEST:
        raise InvalidInputError(
            f"name at most {MAX_SKILLS_PER_REQUEST} skills at once ({len(queries)} were given)"
        )
    return queries
