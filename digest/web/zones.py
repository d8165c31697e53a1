"""The timezone picker's choices: common zones first, then every place-named IANA zone (issue 17).

The raw list has about 600 names, among them "Factory", legacy aliases ("US/Eastern", "EST5EDT") and the
POSIX-style "Etc/GMT+5", whose sign is the inverse of what it reads (five hours *behind* UTC). People
pick a city, so the list keeps the names under the continents and oceans (tz's own regions, as in its
zone1970.tab) plus UTC. A subscription stored with another valid name still finds it in its own list,
and the server accepts any IANA name, so a page built before this list changed keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
# Where most readers are, west to east; the browser's own zone is picked by /static/timezone.js.
COMMON = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Lagos",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@dataclass(frozen=True, slots=True)
class Zone:
    """One choice: its IANA name (the value sent) and how it reads, city first ("New York (America)"),
    so typing a city's first letters in the closed list finds it (a select's own type-ahead)."""

    name: str

    @property
    def label(self) -> str:
        region, _, city = self.name.rpartition("/")
        return f"{city.replace('_', ' ')} ({region.replace('_', ' ')})" if region else city


@dataclass(frozen=True, slots=True)
class ZoneChoices:
    """The picker's two groups and the zone it starts on."""

    common: tuple[Zone, ...]
    others: tuple[Zone, ...]
    selected: str


@cache
def _known() -> frozenset[str]:
    # Reading the zone directories takes milliseconds; the set does not change while the process runs.
    return frozenset(available_timezones())


@cache
def _places() -> tuple[str, ...]:
    return tuple(sorted(name for name in _known() if name.split("/", 1)[0] in REGIONS))


def zone_choices(selected: str) -> ZoneChoices:
    """The choices with ``selected`` (a valid IANA name) among them: a stored zone outside the list, such
    as "Etc/UTC", is added at the end of the common group rather than silently replaced."""
    common = [name for name in COMMON if name in _known()]
    places = _places()
    if selected not in common and selected not in places and selected in _known():
        common.append(selected)
    others = sorted((Zone(name) for name in places if name not in common), key=lambda zone: zone.label)
    return ZoneChoices(tuple(map(Zone, common)), tuple(others), selected)


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA timezone this machine knows."""
    return name in _known()
